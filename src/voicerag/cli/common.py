"""What every command shares: the command groups, the consoles, option types, settings and the VoiceRAG
instance a command runs with, and calls to a running server."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from voicerag.errors import UnknownCollection, VoiceRAGError

if TYPE_CHECKING:  # the settings (pydantic) and progress bars load when a command needs them, not for --help
    from rich.progress import Progress

    from voicerag.config import Settings

T = TypeVar("T")


def _group(help: str) -> typer.Typer:
    """A command group whose help flows as Markdown: a docstring's line breaks don't split a sentence."""
    return typer.Typer(help=help, rich_markup_mode="markdown", no_args_is_help=True)


app = _group(help="VoiceRAG: voice-enabled retrieval-augmented question answering.")
config_app = _group(help="Show, validate and get advice on settings.")
eval_app = _group(help="Measure quality on labelled data.")
cache_app = _group(help="Cache statistics and invalidation.")
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")
app.add_typer(cache_app, name="cache")
postgres_app = _group(
    help="A local PostgreSQL with pgvector under DATA_DIR/postgres (pip install 'voicerag[pgvector]')."
)
app.add_typer(postgres_app, name="postgres")
db_app = _group(help="The store's schema: its migrations (Alembic).")
app.add_typer(db_app, name="db")
keys_app = _group(help="API keys: create (shown once), list, revoke.")
app.add_typer(keys_app, name="keys")

# Text is printed as it is (markup off: a message that quotes "kb[x]" or "pip install 'voicerag[pgvector]'" keeps
# its brackets), and whole lines are never wrapped (copy-paste lines, logs, pipes); styles come from Text.
console = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
out = Console(soft_wrap=True, markup=False, highlight=False)


def say_error(message: str, label: str = "error:") -> None:
    """One line on stderr: a red label, then the message as written."""
    console.print(Text.assemble((label, "red"), " ", message))


BENCH_MODULES = ("jiwer", "whisper_normalizer", "matplotlib")


def require_bench_extra() -> None:
    """Exit with how to install them when the benchmark's libraries (the ``bench`` extra) are absent."""
    import importlib.util

    missing = [name for name in BENCH_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        say_error(
            f"this command needs {', '.join(missing)}, which a server install leaves out: pip install 'voicerag[bench]'"
        )
        raise typer.Exit(2)


def say_warning(message: str) -> None:
    console.print(Text.assemble(("warning:", "yellow"), " ", message))


def say_note(message: str, style: str = "") -> None:
    """A line on stderr in ``style``, the text as written."""
    console.print(Text(message, style=style))


def folding_table(*headers: str) -> Table:
    """A table whose long values fold onto more lines instead of being cut."""
    grid = Table()
    for header in headers:
        grid.add_column(header, overflow="fold")
    return grid


DEFAULT_COLLECTION = "docs"  # what 'make run' ingests the demo documents into
Collections = Annotated[
    list[str], typer.Option("--collection", "-c", help="collection name (repeatable)", show_default=True)
]
Collection = Annotated[str, typer.Option("--collection", "-c", help="collection name")]
JsonFlag = Annotated[bool, typer.Option("--json", help="print one JSON object", metavar="")]
ServerUrl = Annotated[
    str | None,
    typer.Option("--url", envvar="VOICERAG_URL", help="a running server, e.g. http://127.0.0.1:8000"),
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar="VOICERAG_API_KEY", help="an admin key, when the server needs one")
]
Mode = Annotated[
    Literal["dense", "lexical", "hybrid"] | None, typer.Option("--mode", help="search mode (default: hybrid)")
]


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        out.print(f"voicerag {version('voicerag')}")
        raise typer.Exit()


@app.callback()
def main(
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file (or VOICERAG_CONFIG)")] = None,
    show_version: Annotated[
        bool, typer.Option("--version", help="print the version and exit", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    if config is not None:
        os.environ["VOICERAG_CONFIG"] = str(config)


def settings_or_exit(**overrides: Any) -> Settings:
    from voicerag.config import ConfigError, load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            say_error(problem, "config error:")
        raise typer.Exit(2) from None


def run_with_rag(work: Callable[[Any], Awaitable[T]], settings: Settings | None = None) -> T:
    """Open VoiceRAG, run ``work(rag)``, close it; user errors print one line and exit 1."""
    import asyncio

    from voicerag.app import VoiceRAG
    from voicerag.config import LEGACY_DATA_DIR

    async def runner() -> T:
        chosen = settings or settings_or_exit()
        if chosen.data_dir == LEGACY_DATA_DIR and not chosen.database_url:
            say_note(
                f"using the store in {LEGACY_DATA_DIR.resolve()} (an older release's default, found here); "
                "VOICERAG_DATA_DIR chooses another",
                "yellow",
            )
        rag = await VoiceRAG.open(chosen, role="cli")
        for warning in rag.store_warnings:
            say_warning(warning)
        try:
            return await work(rag)
        except UnknownCollection as exc:  # say where we looked and what it holds: an empty data dir is the usual cause
            names = [c["name"] for c in await rag.list_collections()]
            where = f"the store in {rag.settings.data_dir.resolve()}" if not rag.settings.database_url else "the store"
            held = f"it holds: {', '.join(names)}" if names else "it holds no collections yet"
            exc.detail = (
                f"{exc.detail}. Looked in {where}; {held}. (VOICERAG_DATA_DIR or --config choose another store; "
                "'voicerag ingest PATH -c NAME' adds documents.)"
            )
            raise
        finally:
            await rag.aclose()

    try:
        return asyncio.run(runner())
    except VoiceRAGError as exc:
        say_error(f"{exc.detail}")
        raise typer.Exit(1) from None


def progress_bar(label: str, quiet: bool) -> Progress:
    """A progress bar on stderr (hidden when the output is JSON)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=quiet
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def call_server(method: str, url: str, path: str, api_key: str | None, body: Any = None) -> Any:
    """One call to a running server's admin API; its problem detail printed and exit 1 on an error."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.request(method, url.rstrip("/") + path, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        say_error(f"could not reach {url}: {exc}")
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        say_error(str(detail), f"error {response.status_code}:")
        raise typer.Exit(1)
    return response.json()

"""The ``voicerag`` command: serve, ingest, search, ask, transcribe, say, talk, collections, cache, config, eval,
bench."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from voicerag.config import ConfigError, Settings, load_settings, recommend
from voicerag.errors import InvalidInput, NotFound, VoiceRAGError

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
keys_app = _group(help="API keys: create (shown once), list, revoke.")
app.add_typer(keys_app, name="keys")

console = Console(stderr=True, soft_wrap=True)  # messages stay whole lines (logs, pipes, tests)
out = Console()

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


@app.callback()
def main(
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file (or VOICERAG_CONFIG)")] = None,
) -> None:
    if config is not None:
        os.environ["VOICERAG_CONFIG"] = str(config)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            console.print(f"[red]config error:[/red] {problem}")
        raise typer.Exit(2) from None


def _run(work: Callable[[Any], Awaitable[T]], settings: Settings | None = None) -> T:
    """Open VoiceRAG, run ``work(rag)``, close it; user errors print one line and exit 1."""
    from voicerag.app import VoiceRAG

    async def runner() -> T:
        rag = await VoiceRAG.open(settings or _settings(), role="cli")
        for warning in rag.store_warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        try:
            return await work(rag)
        except NotFound as exc:  # say where we looked and what is there: a new, empty data dir is the usual cause
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
        console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from None


def _progress(label: str, quiet: bool) -> Progress:
    """A progress bar on stderr (hidden when the output is JSON)."""
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, disable=quiet
    )


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    access_log: Annotated[
        bool | None, typer.Option("--access-log/--no-access-log", help="uvicorn's access log (default: off)")
    ] = None,
) -> None:
    """Serve the HTTP API, its OpenAPI docs (/docs) and the web page."""
    import uvicorn

    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    if not _loopback(host):  # reachable from other machines: every route but health needs a key
        if not _run(lambda rag: rag.keys.any_active(), settings):
            console.print(
                f"refusing to serve on {host}: it is reachable from other machines and no API key exists. "
                "Create one first: voicerag keys create --name admin --scope admin"
            )
            raise typer.Exit(2)
        settings = settings.model_copy(update={"require_api_key": True})
        os.environ["VOICERAG_REQUIRE_API_KEY"] = "true"  # for --workers: each worker reads the environment
    console.print(f"VoiceRAG on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    logs = settings.access_log if access_log is None else access_log
    if workers > 1:
        # every worker is a process with its own models: split the cores between them unless told otherwise
        cores = os.cpu_count() or 1
        for name, value in (("ONNX_THREADS", max(1, cores // workers)), ("STT_THREADS", max(1, cores // workers))):
            os.environ.setdefault(f"VOICERAG_{name}", str(value))
        uvicorn.run(
            "voicerag.api.asgi:app",
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            access_log=logs,
            timeout_graceful_shutdown=10,
        )
    else:
        from voicerag.api.app import create_app

        uvicorn.run(
            create_app(settings, freeze_heap=True),
            host=host,
            port=port,
            log_level="info",
            access_log=logs,
            timeout_graceful_shutdown=10,
        )


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (txt, md, html, pdf, docx, jsonl)")],
    collection: Collection = DEFAULT_COLLECTION,
    queued: Annotated[
        bool, typer.Option("--async", help="queue a job for 'voicerag worker' processes and print its id", metavar="")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="stop at the first unreadable file (default: skip it)", metavar="")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Ingest files; a file's document id is its path relative to the argument (re-ingest replaces it). An
    unreadable file is skipped and listed at the end (exit 1 when any was); --strict stores nothing then."""
    from voicerag.documents.loaders import load_paths

    skipped: list[dict[str, str]] | None = None if strict else []
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        console.print(f"[red]error:[/red] no such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)

    async def work(rag: Any) -> Any:
        documents = await asyncio.to_thread(load_paths, paths, skipped)
        if not documents:  # nothing readable: create nothing
            return None
        if queued:
            return await rag.enqueue_ingest(collection, documents, skipped or [])
        with _progress("embedding chunks", quiet=as_json) as bar:
            task = bar.add_task("ingest", total=None)
            return await rag.ingest(
                collection, documents, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )

    result = _run(work)
    if result is None:
        if not skipped:
            console.print(f"[red]error:[/red] no supported files under {', '.join(map(str, paths))}")
            raise typer.Exit(1)
        if as_json:
            _print_json({"collection": collection, "documents": 0, "skipped": skipped})
    elif queued:
        if as_json:
            _print_json(result.to_json())
        else:
            out.print(
                f"queued job {result.id}: {result.documents} documents into {collection} (GET /v1/jobs/{result.id})"
            )
    elif as_json:
        _print_json(result.to_json() | {"skipped": skipped or []})
    else:
        out.print(
            f"{collection}: {result.documents} documents ({result.added} added, {result.updated} updated, "
            f"{result.unchanged} unchanged), {result.chunks} chunks in {result.seconds:.2f} s "
            f"({result.docs_per_s:.1f} docs/s, {result.chunks_per_s:.1f} chunks/s)"
        )
    if skipped:
        console.print(f"[yellow]skipped {len(skipped)} unreadable file(s):[/yellow]")
        for entry in skipped:
            console.print(f"  {entry['file']}: {entry['error']}")
        raise typer.Exit(1)


def _source_rows(sources: list[Any]) -> list[dict[str, Any]]:
    return [s.to_json() for s in sources]


@app.command()
def search(
    query: str,
    collection: Collections = [DEFAULT_COLLECTION],  # noqa: B006
    mode: Mode = None,
    k: Annotated[int | None, typer.Option("-k", help="results")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Search collections (hybrid by default)."""
    sources = _run(lambda rag: rag.search(query, collection, mode, k))
    if as_json:
        _print_json({"query": query, "results": _source_rows(sources)})
        return
    table = Table("#", "score", "document", "text")
    for s in sources:
        table.add_row(str(s.n), f"{s.score:.4f}", s.document_id, s.text[:160])
    out.print(table)


@app.command()
def ask(
    question: str,
    collection: Collections = [DEFAULT_COLLECTION],  # noqa: B006
    mode: Mode = None,
    k: Annotated[int | None, typer.Option("-k", help="sources to retrieve")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Ask a question; prints the grounded answer and its sources."""
    answer = _run(lambda rag: rag.ask(question, collection, mode, k))
    if as_json:
        _print_json(answer.to_json())
        return
    out.print(answer.text)
    if answer.fallback:
        console.print(f"[yellow](extractive fallback: {answer.fallback_reason})[/yellow]")
    if answer.found:
        for s in answer.sources:
            out.print(f"  [{s.n}] {s.title or s.document_id} ({s.document_id}, score {s.score:.4f})")
    timings = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in answer.timings_ms.items())
    console.print(f"[dim]{answer.generator}{', cached' if answer.cached else ''}: {timings}[/dim]")


@app.command()
def collections(as_json: JsonFlag = False) -> None:
    """List collections with their document and chunk counts."""
    rows = _run(lambda rag: rag.list_collections())
    if as_json:
        _print_json({"collections": rows})
        return
    table = Table("collection", "documents", "chunks", "generation")
    for r in rows:
        table.add_row(r["name"], str(r["documents"]), str(r["chunks"]), str(r["generation"]))
    out.print(table)


@app.command()
def delete(
    collection: Annotated[str, typer.Option("--collection", "-c")],
    document: Annotated[list[str] | None, typer.Option("--document", "-d", help="document id (repeatable)")] = None,
) -> None:
    """Delete documents from a collection, or the whole collection when no --document is given."""

    async def work(rag: Any) -> None:
        if document:
            await rag.delete_documents(collection, document)
        else:
            await rag.delete_collection(collection)

    _run(work)
    out.print(f"deleted {', '.join(document) if document else 'collection ' + collection}")


# ---- config ------------------------------------------------------------------------------------------------


def _server(method: str, url: str, path: str, api_key: str | None, body: Any = None) -> Any:
    """One call to a running server's admin API; its problem detail printed and exit 1 on an error."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.request(method, url.rstrip("/") + path, json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        console.print(f"[red]error:[/red] could not reach {url}: {exc}")
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        console.print(f"[red]error {response.status_code}:[/red] {detail}")
        raise typer.Exit(1)
    return response.json()


@config_app.command("show")
def config_show(url: ServerUrl = None, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """Print the settings (secrets hidden): this machine's, or with --url a running server's, marking what
    was changed at run time and by whom; 'restart' marks settings that cannot change live."""
    from voicerag.operations.live_config import LIVE, SECRET

    if url:
        described = _server("GET", url, "/v1/admin/config", api_key)["settings"]
    else:
        settings = _settings()
        data = settings.model_dump(mode="json")
        described = {
            key: {"value": "(set)" if value and any(s in key for s in SECRET) else value, "live": key in LIVE}
            for key, value in data.items()
        }
        described["resolved_database_url"] = {"value": settings.resolved_database_url, "live": False}
    if as_json:
        _print_json(described)
        return
    table = Table("setting", "value", "changes", "changed at run time")
    for key, entry in described.items():
        changed = ""
        if entry.get("changed_by"):
            changed = f"by {entry['changed_by']} (started with {entry.get('started_with')!r})"
        table.add_row(key, str(entry["value"]), "live" if entry["live"] else "restart", changed)
    out.print(table)


@config_app.command("set")
def config_set(
    assignments: Annotated[list[str], typer.Argument(help="KEY=VALUE (VALUE as JSON or text; null: back to start)")],
    url: ServerUrl = "http://127.0.0.1:8000",
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Change settings of a running server and every replica sharing its Redis, without a restart. All apply or
    none; a setting that needs a restart is refused with the reason."""
    updates: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            console.print(f"[red]error:[/red] {assignment!r} is not KEY=VALUE")
            raise typer.Exit(2)
        try:
            updates[key.strip().lower()] = json.loads(raw)
        except ValueError:
            updates[key.strip().lower()] = raw
    changed = _server("PATCH", url or "http://127.0.0.1:8000", "/v1/admin/config", api_key, {"settings": updates})[
        "changed"
    ]
    if as_json:
        _print_json(changed)
        return
    for key, (old, new) in changed.items():
        out.print(f"{key}: {old!r} -> {new!r}")
    if not changed:
        out.print("nothing changed (the values were already set)")


@config_app.command("validate")
def config_validate() -> None:
    """Exit 0 if the settings are valid; otherwise print one line per bad value and exit 2."""
    _settings()
    out.print("settings are valid")


@config_app.command("recommend")
def config_recommend(
    chunks: Annotated[int, typer.Option(help="expected number of chunks in the corpus")] = 10_000,
    cores: Annotated[int | None, typer.Option(help="CPU cores (default: this machine)")] = None,
    memory_gb: Annotated[float | None, typer.Option(help="RAM in GB (default: this machine)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Suggest a preset, index type and pool sizes for a corpus size and machine, with the reasons."""
    import psutil

    cores = cores or os.cpu_count() or 1
    memory_gb = memory_gb or psutil.virtual_memory().total / 1e9
    rec = recommend(chunks, cores, memory_gb)
    if as_json:
        _print_json(rec.__dict__)
        return
    out.print(f"preset: [bold]{rec.preset}[/bold]   index_type: [bold]{rec.index_type}[/bold]")
    out.print(
        f"db_pool_size: {rec.db_pool_size}   cpu_concurrency: {rec.cpu_concurrency}   "
        f"cache_memory_mb: {rec.cache_memory_mb}"
    )
    for reason in rec.reasons:
        out.print(f"  - {reason}")


# ---- maintenance -------------------------------------------------------------------------------------------


@app.command()
def maintenance(as_json: JsonFlag = False) -> None:
    """Purge expired cache entries and audio beyond its budget, refresh the store's statistics, compact or
    rebuild indexes that call for it, and advise on pools. Safe while a server runs on the same store."""
    report = _run(lambda rag: _maintain(rag))
    if as_json:
        _print_json(report)
        return
    removed = ", ".join(f"{tier} {n}" for tier, n in report["cache_entries_removed"].items())
    out.print(f"cache entries removed: {removed}")
    out.print(f"store: {'; '.join(report['store'])}")
    for entry in report["indexes"]:
        out.print(f"{entry['collection']} ({entry['chunks']} chunks): {'; '.join(entry['actions']) or 'nothing to do'}")
    for advice in report["pool_advice"]:
        out.print(f"pools: {advice}")


async def _maintain(rag: Any) -> dict[str, Any]:
    await rag.retriever.warm()  # a fresh process: load the indexes it is to look after
    return await rag.maintain()


# ---- worker --------------------------------------------------------------------------------------------------


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="run the queued jobs, then exit", metavar="")] = False,
    max_jobs: Annotated[int, typer.Option(help="jobs run at once by this process")] = 1,
) -> None:
    """Run queued ingestion jobs (needs VOICERAG_REDIS_URL). Start as many as you like, on any machine that
    reaches the same store and Redis; each commits in batches, and a job whose worker died is picked up again
    after VOICERAG_JOB_TIMEOUT_S without duplicating anything."""
    from arq.worker import Worker

    from voicerag.jobs.queue import worker_settings

    settings = _settings()
    try:
        options = worker_settings(settings.redis_url, settings.job_timeout_s, max_jobs)
    except VoiceRAGError as exc:
        console.print(exc.detail)
        raise typer.Exit(1) from None
    Worker(**options, burst=burst).run()


# ---- postgres ------------------------------------------------------------------------------------------------


def _postgres(action: str, as_json: bool) -> None:
    from voicerag import postgres

    settings = _settings()
    try:
        info = getattr(postgres, action)(settings.data_dir)
    except VoiceRAGError as exc:
        console.print(exc.detail)
        raise typer.Exit(1) from None
    if as_json:
        _print_json({"url": info["url"], "running": info["running"], "pgdata": info["pgdata"]})
        return
    if info["running"]:
        out.print(f"PostgreSQL with pgvector runs in {info['pgdata']} (pid {info['pid']})")
        out.print(f"export VOICERAG_DATABASE_URL='{info['url']}'  # add VOICERAG_VECTOR_BACKEND=pgvector to use it")
    else:
        out.print(f"PostgreSQL in {info['pgdata']} is not running")


@postgres_app.command("start")
def postgres_start(as_json: JsonFlag = False) -> None:
    """Start it (created on first use); prints the URL for VOICERAG_DATABASE_URL."""
    _postgres("start", as_json)


@postgres_app.command("status")
def postgres_status(as_json: JsonFlag = False) -> None:
    """Whether it runs, and its URL."""
    _postgres("status", as_json)


@postgres_app.command("stop")
def postgres_stop(as_json: JsonFlag = False) -> None:
    """Stop it (its data stays for the next start)."""
    _postgres("stop", as_json)


# ---- keys --------------------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="who or what the key is for")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="read:COLLECTION, write:COLLECTION ('*' for all) or admin; repeat")
    ],
    expires_days: Annotated[float | None, typer.Option(help="the key stops working after this many days")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key. It is printed once: only its hash is stored."""
    key, record = _run(lambda rag: rag.keys.create(name, scope, expires_days))
    if as_json:
        _print_json({"key": key} | record.to_json())
        return
    out.print(f"key for [bold]{record.name}[/bold] ({', '.join(record.scopes)}); shown only now:")
    out.print(key, soft_wrap=True)


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """Every key's name, scopes, dates and state (never the keys themselves)."""
    records = _run(lambda rag: rag.keys.list())
    if as_json:
        _print_json({"keys": [r.to_json() for r in records]})
        return
    table = Table("name", "scopes", "created", "expires", "state")
    for r in records:
        expires = r.expires_at.date().isoformat() if r.expires_at else "never"
        table.add_row(
            r.name, ", ".join(r.scopes), r.created_at.date().isoformat(), expires, "revoked" if r.revoked else "active"
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key (other running servers stop accepting it within 10 s)."""
    _run(lambda rag: rag.keys.revoke(name))
    out.print(f"revoked {name}")


# ---- cache -------------------------------------------------------------------------------------------------


@cache_app.command("stats")
def cache_stats(url: ServerUrl = None, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """What the cache holds per policy and tier (Redis, SQL and disk are shared by every process). Hits and
    misses are counted inside each server process: --url asks a running server for its own."""
    if url:
        stats = _server("GET", url, "/v1/cache/stats", api_key)
        if as_json:
            _print_json(stats)
            return
        table = Table("policy", "hits", "misses", "hit rate", "memory bytes", "tiers")
        for name, s in stats.items():
            memory = s["tiers"].get("memory", {}).get("bytes", 0)
            row = [name, str(s["hits"]), str(s["misses"]), f"{s['hit_rate']:.2%}", str(memory), ", ".join(s["tiers"])]
            table.add_row(*row)
        out.print(table)
        return
    stored = _run(lambda rag: rag.cache.stored())
    if as_json:
        _print_json({"stored": stored})
        return
    table = Table("policy", "entries per tier (this store and Redis)")
    for name, tiers in stored.items():
        table.add_row(name, ", ".join(f"{tier} {n}" for tier, n in tiers.items() if tier != "memory") or "-")
    out.print(table)
    console.print("[dim]hits and misses: 'voicerag cache stats --url http://HOST:PORT' asks the server[/dim]")


@cache_app.command("clear")
def cache_clear(
    policy: Annotated[str | None, typer.Option(help="only this policy")] = None,
    collection: Annotated[str | None, typer.Option(help="only entries of this collection")] = None,
    pattern: Annotated[str | None, typer.Option(help="glob over keys, e.g. 'vr1:answer:*'")] = None,
) -> None:
    """Remove cache entries from every tier (all of them when no filter is given)."""

    async def work(rag: Any) -> dict[str, int]:
        try:
            return await rag.cache.invalidate(
                policy=policy, tag=f"collection:{collection}" if collection else None, pattern=pattern
            )
        except KeyError:
            raise InvalidInput(f"unknown policy {policy!r}; one of {', '.join(rag.cache.policies)}") from None

    removed = _run(work)
    out.print(f"removed: {removed}")


# ---- voice -------------------------------------------------------------------------------------------------

AudioOut = Annotated[Path, typer.Option("--output", "-o", help="audio file to write; its suffix is the format")]


def _read_audio(path: Path) -> bytes:
    if not path.is_file():
        console.print(f"[red]error:[/red] {path} does not exist")
        raise typer.Exit(2)
    return path.read_bytes()


def _audio_format(path: Path) -> str:
    from voicerag.speech.audio import OUTPUT_FORMATS

    fmt = path.suffix.lstrip(".").lower() or "wav"
    fmt = {"ogg": "opus", "raw": "pcm"}.get(fmt, fmt)
    if fmt not in OUTPUT_FORMATS:
        console.print(f"[red]error:[/red] cannot write .{fmt}; use one of {', '.join(OUTPUT_FORMATS)}")
        raise typer.Exit(2)
    return fmt


def _write_audio(path: Path, speech: Any) -> None:
    from voicerag.speech.audio import encode_audio

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_audio(speech.pcm, speech.sample_rate, _audio_format(path)))


@app.command()
def transcribe(
    file: Annotated[Path, typer.Argument(help="audio: wav, flac, ogg, webm, mp3, m4a")],
    language: Annotated[str | None, typer.Option(help="spoken language (ISO 639-1)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Speech to text with the configured transcriber."""
    data = _read_audio(file)
    timings: dict[str, float] = {}
    transcript = _run(lambda rag: rag.speech.transcribe_file(data, language, timings))
    if as_json:
        _print_json(transcript.to_json() | {"timings_ms": timings})
    else:
        out.print(transcript.text)


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="what to say")],
    output: AudioOut = Path("speech.wav"),
    speed: Annotated[float | None, typer.Option(help="0.25 .. 4.0")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Text to speech with the configured voice, written to a file (wav, mp3, opus, flac, aac, webm, m4a, pcm)."""
    _audio_format(output)
    timings: dict[str, float] = {}
    speech = _run(lambda rag: rag.speech.speak(text, timings, speed))
    _write_audio(output, speech)
    summary = {"output": str(output), "seconds": round(speech.seconds, 3), "sample_rate": speech.sample_rate}
    if as_json:
        _print_json(summary | {"timings_ms": timings})
    else:
        out.print(f"wrote {output} ({summary['seconds']} s of audio)")


@app.command()
def talk(
    file: Annotated[Path, typer.Argument(help="the spoken question")],
    collections: Collections = [DEFAULT_COLLECTION],  # noqa: B006
    output: AudioOut = Path("answer.wav"),
    mode: Mode = None,
    as_json: JsonFlag = False,
) -> None:
    """A spoken question in, a spoken answer out: transcribe, answer from the documents, speak."""
    _audio_format(output)
    data = _read_audio(file)
    timings: dict[str, float] = {}
    transcript, answer, speech = _run(lambda rag: rag.voice.ask_aloud(data, collections, mode, None, None, timings))
    _write_audio(output, speech)
    if as_json:
        _print_json(
            {"transcript": transcript.text, **answer, "output": str(output), "audio_seconds": round(speech.seconds, 3)}
            | {"timings_ms": timings}
        )
        return
    out.print(f"[bold]You asked:[/bold] {transcript.text}")
    out.print(f"[bold]Answer:[/bold] {answer['answer']}")
    out.print(f"spoken answer: {output} ({speech.seconds:.1f} s)")


# ---- eval --------------------------------------------------------------------------------------------------


@eval_app.command("retrieval")
def eval_retrieval(
    folder: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv")],
    mode: Annotated[Literal["dense", "lexical", "hybrid"], typer.Option(help="search mode")] = "hybrid",
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N queries")] = None,
    answers: Annotated[
        bool, typer.Option(help="also score the extractive answer on answers.jsonl", metavar="")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """nDCG@10, Recall@100, MRR@10 and query latency p50/p95 (uncached search)."""
    from voicerag.evaluation.retrieval import evaluate_retrieval

    async def work(rag: Any) -> dict[str, Any]:
        with _progress("queries", quiet=as_json) as bar:
            task = bar.add_task("eval", total=None)
            return await evaluate_retrieval(
                rag,
                folder,
                mode,
                limit,
                answers,
                lambda d, t: bar.update(task, completed=d, total=t),  # type: ignore[arg-type]
            )

    result = _run(work)
    if as_json:
        _print_json(result)
        return
    table = Table("metric", "value")
    for key in ("queries", "ndcg@10", "recall@100", "mrr@10"):
        table.add_row(key, str(result[key]))
    table.add_row("latency p50 / p95 ms", f"{result['latency_ms']['p50']} / {result['latency_ms']['p95']}")
    if "answer" in result:
        table.add_row("answer EM / F1", f"{result['answer']['exact_match']} / {result['answer']['f1']}")
    out.print(table)


@eval_app.command("answers")
def eval_answers(
    folder: Annotated[Path, typer.Argument(help="BEIR folder with answers.jsonl (SQuAD)")],
    limit: Annotated[int, typer.Option(help="questions sampled evenly across the set (0: all)")] = 500,
    offset: Annotated[int, typer.Option(help="start the even sample here (another offset: a disjoint sample)")] = 0,
    cases: Annotated[bool, typer.Option("--cases", help="add each case's features to the JSON", metavar="")] = False,
    mode: Mode = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer accuracy (the gold answer in the answer) on answerable questions, and how well the answerer says
    it found nothing when the question's paragraph is taken out: abstention precision and recall, at the
    configured ANSWER_MIN_CONFIDENCE and over a sweep of thresholds."""
    from voicerag.evaluation.answers import evaluate_answers

    async def work(rag: Any) -> dict[str, Any]:
        with _progress("questions", quiet=as_json) as bar:
            task = bar.add_task("eval", total=None)
            return await evaluate_answers(
                rag,
                folder,
                limit,
                mode,
                lambda d, t: bar.update(task, completed=d, total=t),  # type: ignore[arg-type]
                offset,
                cases,
            )

    result = _run(work)
    if as_json:
        _print_json(result)
        return
    at = result["at_threshold"]
    table = Table("metric", "value")
    table.add_row("questions (each asked answerable and unanswerable)", str(result["questions"]))
    table.add_row("gold paragraph in the sources", str(result["gold_paragraph_retrieved"]))
    table.add_row(f"accuracy at threshold {at['threshold']}", str(at["accuracy"]))
    table.add_row("abstention precision / recall", f"{at['abstention_precision']} / {at['abstention_recall']}")
    absent = result["at_threshold_answer_absent"]
    table.add_row(
        "the same, unanswerable cases with the answer elsewhere left out",
        f"{absent['abstention_precision']} / {absent['abstention_recall']}",
    )
    table.add_row("accuracy if never abstaining", str(result["accuracy_if_never_abstaining"]))
    table.add_row("thresholds meeting the targets", ", ".join(map(str, result["thresholds_meeting_targets"])) or "none")
    out.print(table)


@eval_app.command("semantic-cache")
def eval_semantic_cache(
    folder: Annotated[Path, typer.Argument(help="BEIR folder with SQuAD-style questions (several per paragraph)")],
    pairs: Annotated[int, typer.Option(help="pairs of each kind")] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """Precision and hit rate of the semantic answer cache per similarity threshold."""
    from voicerag.evaluation.semantic import evaluate_semantic_cache

    result = _run(lambda rag: evaluate_semantic_cache(rag.embed, folder, pairs))
    if as_json:
        _print_json(result)
        return
    table = Table("threshold", "precision", "paraphrase hit rate", "false hit rate")
    for row in result["thresholds"]:
        table.add_row(*(str(row[k]) for k in ("threshold", "precision", "paraphrase_hit_rate", "false_hit_rate")))
    out.print(table)
    out.print(f"lowest threshold with precision >= 99%: {result['lowest_threshold_with_precision_99']}")


@eval_app.command("stt")
def eval_stt(
    folder: Annotated[Path, typer.Argument(help="audio clips and transcripts.tsv (file<TAB>text, a header line)")],
    limit: Annotated[int | None, typer.Option(help="only the first N clips")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Word error rate (Whisper's English normaliser) and real-time factor of the configured transcriber."""
    from voicerag.evaluation.stt import evaluate_stt, load_transcripts

    async def work(rag: Any) -> dict[str, Any]:
        total = len(load_transcripts(folder)[:limit])
        with _progress("clips", quiet=as_json) as bar:
            task = bar.add_task("stt", total=total)
            return await evaluate_stt(rag.speech, folder, limit, lambda: bar.advance(task))

    result = _run(work)
    if as_json:
        _print_json(result)
        return
    table = Table("metric", "value")
    for key in ("clips", "audio_seconds", "wer", "rtf", "model"):
        table.add_row(key, str(result[key]))
    out.print(table)


@app.command()
def bench(
    profile: Annotated[str, typer.Option(help="quick (a smoke test) or full (make bench)")] = "quick",
    synthetic: Annotated[int | None, typer.Option(help="synthetic documents (one chunk each) when no --beir")] = None,
    beir: Annotated[Path | None, typer.Option(help="BEIR folder for corpus and questions")] = None,
    requests: Annotated[int | None, typer.Option(help="requests per scenario")] = None,
    concurrency: Annotated[int | None, typer.Option(help="clients for the throughput scenarios")] = None,
    zipf: Annotated[float, typer.Option(help="Zipf exponent of the question mix")] = 1.1,
    scenarios: Annotated[
        str | None,
        typer.Option(
            help="comma-separated groups: ingest,embed,search,ask,index,stt,tts,voice,http,floor,replica,jobs"
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="run N times; figures are the medians")] = 1,
    speech: Annotated[
        Path | None, typer.Option(help="recorded clips for stt and voice (a folder with transcripts.tsv)")
    ] = None,
    clips: Annotated[int | None, typer.Option(min=1, help="spoken clips for stt and voice")] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis for the jobs scenarios, a database the bench may use (e.g. /14)")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="keep the ingested corpus here between runs")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the JSON report here")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG: latency CDFs, throughput vs concurrency")] = None,
    baseline: Annotated[Path | None, typer.Option(help="compare with this report; exit 1 on a regression")] = None,
    save_baseline: Annotated[Path | None, typer.Option(help="write this run as a baseline")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Benchmark every layer side by side: ingest, embeddings, search (vs raw FAISS), ask (uncached, cached,
    semantic), index kinds at equal recall, speech, voice-to-voice, and HTTP load with the performance layer
    on and off."""
    import dataclasses
    import tempfile

    from voicerag.bench.regression import median_of_runs
    from voicerag.bench.runner import PROFILES, SCENARIO_GROUPS, BenchConfig, run_bench

    if profile not in PROFILES:
        console.print(f"[red]error:[/red] --profile must be one of {', '.join(PROFILES)}")
        raise typer.Exit(2)
    chosen = PROFILES[profile]
    overrides = {"synthetic": synthetic, "requests": requests, "concurrency": concurrency, "speech_clips": clips}
    chosen = dataclasses.replace(chosen, **{k: v for k, v in overrides.items() if v is not None})
    groups = set(scenarios.split(",")) if scenarios else None
    if groups and not groups <= set(SCENARIO_GROUPS):
        console.print(f"[red]error:[/red] unknown scenarios {sorted(groups - set(SCENARIO_GROUPS))}")
        raise typer.Exit(2)
    if speech:  # checked now, not after the other scenarios have run for minutes
        from voicerag.evaluation.stt import load_transcripts

        try:
            load_transcripts(speech)
        except InvalidInput as error:
            console.print(f"[red]error:[/red] --speech: {error}")
            raise typer.Exit(2) from None
    with tempfile.TemporaryDirectory(prefix="voicerag-bench-") as scratch:
        folder = data_dir or Path(scratch)
        reports = []
        for run in range(repeat):
            console.print(f"bench run {run + 1} of {repeat} ({profile} profile) ...")
            config = BenchConfig(folder, chosen, beir, zipf, groups, speech, redis_url)
            reports.append(asyncio.run(run_bench(config)))
    result = median_of_runs(reports) if repeat > 1 else reports[0]
    if repeat > 1 and "ingest" in reports[0]["scenarios"]:
        result["scenarios"]["ingest"] = reports[0]["scenarios"]["ingest"]  # later runs find nothing new
    for path in (out_file, save_baseline):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=2) + "\n")
    if plot:
        from voicerag.bench.plot import write_plot

        write_plot(result, plot)
    if not as_json:
        _print_bench(result)
    failed = _check_baseline(result, baseline, quiet=as_json) if baseline else False
    _print_json(result)
    if failed:
        raise typer.Exit(1)


def _print_bench(result: dict[str, Any]) -> None:
    table = Table("scenario", "p50 ms", "p95 ms", "p99 ms", "max ms", "rps", "errors", "extra")
    for name, s in result["scenarios"].items():
        if "p50_ms" not in s:
            console.print(f"{name}: {json.dumps(s)}")
            continue
        extra = {k: s[k] for k in ("recall_at_10", "answer_hit_rate", "rtf", "concurrency") if k in s}
        figures = (s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"], s["rps"], s["errors"])
        table.add_row(name, *(str(f) for f in figures), json.dumps(extra) if extra else "")
    console.print(table)
    console.print(result["ratios"])


def _check_baseline(result: dict[str, Any], baseline: Path, quiet: bool = False) -> bool:
    """Print each watched figure against the baseline; True when one regressed."""
    from voicerag.bench.regression import compare

    if not baseline.is_file():
        console.print(f"[red]error:[/red] baseline {baseline} does not exist (write one with --save-baseline)")
        raise typer.Exit(2)
    findings = compare(result, json.loads(baseline.read_text()))
    for finding in findings:
        if finding.regressed or not quiet:
            console.print(finding.describe(), style="red" if finding.regressed else None)
    regressed = [f.figure for f in findings if f.regressed]
    if regressed:
        console.print(f"[red]regression:[/red] {', '.join(regressed)}")
    elif not findings:
        console.print("[yellow]the baseline shares no watched figure with this run[/yellow]")
    return bool(regressed)


@app.command("bench-check")
def bench_check(
    report: Annotated[Path, typer.Argument(help="a bench JSON report")],
    baseline: Annotated[Path, typer.Option(help="the baseline report")],
) -> None:
    """Compare a saved bench report with a baseline; exit 1 naming each figure that regressed."""
    if not report.is_file():
        console.print(f"[red]error:[/red] {report} does not exist")
        raise typer.Exit(2)
    if _check_baseline(json.loads(report.read_text()), baseline):
        raise typer.Exit(1)


@app.command()
def soak(
    url: Annotated[str, typer.Argument(help="a running server, e.g. http://127.0.0.1:8000")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
    question: Annotated[list[str], typer.Option("--question", "-q", help="a question (repeatable)")],
    seconds: Annotated[float, typer.Option(min=5)] = 120,
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    key: Annotated[str | None, typer.Option(help="API key, when the server needs one")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Mixed traffic for a while, sampling the server's memory: does it settle (slope over the last half)?"""
    from voicerag.bench.soak import soak as run_soak

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    result = asyncio.run(run_soak(url, collection, question, seconds, concurrency, headers))
    if as_json:
        _print_json(result)
        return
    rss = result["rss_mb"]
    out.print(f"requests: {result['requests']}")
    out.print(
        f"RSS: {rss['start']:.0f} MB at start, {rss['max']:.0f} MB at most, {rss['end']:.0f} MB at the end; "
        f"{rss['slope_last_half_mb_per_min']:+.1f} MB/min over the last half: "
        + ("settled" if result["plateau"] else "still growing")
    )


@app.command()
def load(
    url: Annotated[str, typer.Argument(help="a running server, e.g. http://127.0.0.1:8000")],
    collections: Collections,
    questions: Annotated[Path | None, typer.Option(help="a file of questions, one per line")] = None,
    question: Annotated[list[str] | None, typer.Option("--question", "-q", help="a question (repeatable)")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 32,
    duration: Annotated[float | None, typer.Option(help="seconds (default 10 unless --requests)")] = None,
    requests: Annotated[int | None, typer.Option(help="stop after this many requests")] = None,
    rate: Annotated[float | None, typer.Option(help="target requests per second (open loop)")] = None,
    zipf: Annotated[float, typer.Option(help="Zipf exponent of the question mix")] = 1.1,
    as_json: JsonFlag = False,
) -> None:
    """Load a running server's /v1/ask with N concurrent clients; latency percentiles, throughput, errors."""
    from voicerag.bench.load import LoadPlan, run_load
    from voicerag.bench.runner import zipf_mix

    pool = list(question or [])
    if questions:
        pool += [line.strip() for line in questions.read_text().splitlines() if line.strip()]
    if not pool:
        console.print("[red]error:[/red] give questions with --question or --questions FILE")
        raise typer.Exit(2)
    mix = zipf_mix(pool, 10_000, zipf)
    if duration is None and requests is None:
        duration = 10.0

    def body(i: int) -> dict[str, Any]:
        return {"question": mix[i % len(mix)], "collections": collections}

    plan = LoadPlan(url.rstrip("/") + "/v1/ask", body, concurrency, duration, requests, rate)
    result = asyncio.run(run_load(plan))
    if not as_json:
        keys = ("requests", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms", "rps", "peak_in_flight", "statuses")
        table = Table("figure", "value")
        for key in keys:
            table.add_row(key, str(result[key]))
        out.print(table)
    else:
        _print_json(result)


@app.command("validate-live")
def validate_live(
    out_dir: Annotated[Path, typer.Option(help="where the raw timings and logs go")] = Path("logs/perf"),
    as_json: JsonFlag = False,
) -> None:
    """Run the remote provider paths (OpenAI, Requesty, ElevenLabs) whose keys are set; record raw timings."""
    from voicerag.bench.live import validate_live as run_live

    result = asyncio.run(run_live(out_dir))
    if as_json:
        _print_json(result)
        return
    for name in result["missing"]:
        out.print(f"skipped {name}: {result['missing'][name]}")
    for name, figures in result["measured"].items():
        out.print(f"{name}: {figures}")
    if result["measured"]:
        out.print(f"raw timings and logs: {result['folder']}")
    else:
        out.print("nothing measured: no provider key is set")


if __name__ == "__main__":
    app()

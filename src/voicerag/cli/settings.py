"""`voicerag config`: show, set (on a running server), validate and recommend settings."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.text import Text

from voicerag.cli.common import (
    ApiKey,
    JsonFlag,
    ServerUrl,
    call_server,
    config_app,
    folding_table,
    out,
    print_json,
    say_error,
    settings_or_exit,
)


@config_app.command("show")
def config_show(url: ServerUrl = None, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """Print the settings (secrets hidden): this machine's, or with --url a running server's, marking what
    was changed at run time and by whom; 'restart' marks settings that cannot change live."""
    from voicerag.operations.live_config import LIVE, is_secret

    if url:
        described = call_server("GET", url, "/v1/admin/config", api_key)["settings"]
    else:
        settings = settings_or_exit()
        data = settings.model_dump(mode="json")
        described = {
            key: {"value": "(set)" if value and is_secret(key) else value, "live": key in LIVE}
            for key, value in data.items()
        }
        described["resolved_database_url"] = {"value": settings.resolved_database_url, "live": False}
    if as_json:
        print_json(described)
        return
    table = folding_table("setting", "value", "changes", "changed at run time")
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
            say_error(f"{assignment!r} is not KEY=VALUE")
            raise typer.Exit(2)
        try:
            updates[key.strip().lower()] = json.loads(raw)
        except ValueError:
            updates[key.strip().lower()] = raw
    changed = call_server("PATCH", url or "http://127.0.0.1:8000", "/v1/admin/config", api_key, {"settings": updates})[
        "changed"
    ]
    if as_json:
        print_json(changed)
        return
    for key, (old, new) in changed.items():
        out.print(f"{key}: {old!r} -> {new!r}")
    if not changed:
        out.print("nothing changed (the values were already set)")


@config_app.command("validate")
def config_validate() -> None:
    """Exit 0 if the settings are valid; otherwise print one line per bad value and exit 2."""
    settings_or_exit()
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
    from voicerag.config import recommend

    rec = recommend(chunks, cores, memory_gb)
    if as_json:
        print_json(rec.__dict__)
        return
    out.print(Text.assemble("preset: ", (rec.preset, "bold"), "   index_type: ", (rec.index_type, "bold")))
    out.print(
        f"db_pool_size: {rec.db_pool_size}   cpu_concurrency: {rec.cpu_concurrency}   "
        f"cache_memory_mb: {rec.cache_memory_mb}"
    )
    for reason in rec.reasons:
        out.print(f"  - {reason}")

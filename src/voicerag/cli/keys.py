"""`voicerag keys`: API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from voicerag.cli.common import (
    JsonFlag,
    folding_table,
    keys_app,
    out,
    print_json,
    run_with_rag,
)

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
    key, record = run_with_rag(lambda rag: rag.keys.create(name, scope, expires_days))
    if as_json:
        print_json({"key": key} | record.to_json())
        return
    out.print(Text.assemble("key for ", (record.name, "bold"), f" ({', '.join(record.scopes)}); shown only now:"))
    out.print(key, soft_wrap=True)


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """Every key's name, scopes, dates and state (never the keys themselves)."""
    records = run_with_rag(lambda rag: rag.keys.list())
    if as_json:
        print_json({"keys": [r.to_json() for r in records]})
        return
    table = folding_table("name", "scopes", "created", "expires", "state")
    for r in records:
        expires = r.expires_at.date().isoformat() if r.expires_at else "never"
        table.add_row(r.name, ", ".join(r.scopes), r.created_at.date().isoformat(), expires, r.state())
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key (other running servers stop accepting it within 10 s)."""
    run_with_rag(lambda rag: rag.keys.revoke(name))
    out.print(f"revoked {name}")

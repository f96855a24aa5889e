"""`voicerag cache`: what the shared tiers hold, a server's counters, invalidation."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from voicerag.cli.common import (
    ApiKey,
    JsonFlag,
    ServerUrl,
    cache_app,
    call_server,
    folding_table,
    out,
    print_json,
    run_with_rag,
    say_note,
)
from voicerag.errors import InvalidInput

# ---- cache -------------------------------------------------------------------------------------------------


@cache_app.command("stats")
def cache_stats(url: ServerUrl = None, api_key: ApiKey = None, as_json: JsonFlag = False) -> None:
    """What the cache holds per policy and tier (Redis, SQL and disk are shared by every process). Hits and
    misses are counted inside each server process: --url asks a running server for its own."""
    if url:
        stats = call_server("GET", url, "/v1/cache/stats", api_key)
        if as_json:
            print_json(stats)
            return
        table = folding_table("policy", "hits", "misses", "hit rate", "memory bytes", "tiers")
        for name, s in stats.items():
            memory = s["tiers"].get("memory", {}).get("bytes", 0)
            row = [name, str(s["hits"]), str(s["misses"]), f"{s['hit_rate']:.2%}", str(memory), ", ".join(s["tiers"])]
            table.add_row(*row)
        out.print(table)
        return
    stored = run_with_rag(lambda rag: rag.cache.stored())
    if as_json:
        print_json({"stored": stored})
        return
    table = folding_table("policy", "entries per tier (this store and Redis)")
    for name, tiers in stored.items():
        table.add_row(name, ", ".join(f"{tier} {n}" for tier, n in tiers.items() if tier != "memory") or "-")
    out.print(table)
    say_note("hits and misses: 'voicerag cache stats --url http://HOST:PORT' asks the server", "dim")


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

    removed = run_with_rag(work)
    out.print(f"removed: {removed}")

"""Re-run two of the hostile probe's faults against a real server, as issue 21 measures them; JSON out.

    python scripts/probe_faults.py pg-kills --runs 3 --requests 2000 --out benchmarks/security/pg_kills.json
    python scripts/probe_faults.py docx-bomb --inflated-mb 1536 --out benchmarks/security/docx_bomb.json

``pg-kills``: ``voicerag serve`` on PostgreSQL (127.0.0.1:5432, its own database ``voicerag_probe``, dropped and
made afresh each run) with Redis (database 13); 8 clients send a mix of asks, searches, document writes and
deletes while every 0.5-1.5 s every server connection to that database is killed (``pg_terminate_backend``).
Each response's status is counted; afterwards the store is checked for half-written documents (a document row
whose chunk count its chunks do not match).

``docx-bomb``: a .docx whose zip says ``word/document.xml`` holds 4 KB while it inflates to ``--inflated-mb``,
uploaded to a SQLite server; the server's resident memory is read from /proc before and after."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.helpers import make_docx, understate_zip_entry, voicerag_serve  # noqa: E402 - the tests' server helpers

PG = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "voicerag_probe"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]
WORDS += ["mike", "november", "oscar"]


def _text(rng: random.Random, n: int) -> str:
    sentences = [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(n)]
    return " ".join(sentences)


async def _fresh_database() -> None:
    admin = await asyncpg.connect(f"{PG}/postgres")
    try:
        await admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DATABASE}'"  # noqa: S608
        )
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()


async def _killer(stop: asyncio.Event, rng: random.Random) -> int:
    """Kill every connection to the probe's database every 0.5-1.5 s; how many were killed."""
    killed = 0
    admin = await asyncpg.connect(f"{PG}/postgres")
    try:
        while not stop.is_set():
            with_timeout = asyncio.create_task(stop.wait())
            await asyncio.wait({with_timeout}, timeout=rng.uniform(0.5, 1.5))
            with_timeout.cancel()
            rows = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                DATABASE,
            )
            killed += sum(1 for r in rows if r[0])
    finally:
        await admin.close()
    return killed


def _request(rng: random.Random) -> tuple[str, str, dict[str, Any] | None]:
    """One request of the mix: 55% asks, 25% searches, 15% writes of 1-3 documents, 5% deletes."""
    roll = rng.random()
    if roll < 0.55:
        return "POST", "/v1/ask", {"question": f"What about {rng.choice(WORDS)}?", "collection": "probe"}
    if roll < 0.8:
        return "POST", "/v1/search", {"query": " ".join(rng.sample(WORDS, 3)), "collection": "probe"}
    if roll < 0.95:
        docs = [
            {"id": f"d{rng.randrange(40)}", "text": _text(rng, rng.randint(2, 30))} for _ in range(rng.randint(1, 3))
        ]
        return "POST", "/v1/collections/probe/documents", {"documents": docs}
    return "DELETE", f"/v1/collections/probe/documents/d{rng.randrange(40)}", None


async def _attack(url: str, args: argparse.Namespace, rng: random.Random) -> tuple[Counter[str], list[str], int, float]:
    """The load with the killer beside it: statuses, failures, connections killed, seconds."""
    stop = asyncio.Event()
    killer = asyncio.create_task(_killer(stop, rng))
    started = time.perf_counter()
    statuses, failures = await _load(url, args.requests, args.clients, rng)
    seconds = time.perf_counter() - started
    stop.set()
    return statuses, failures, await killer, seconds


async def _load(url: str, requests: int, clients: int, rng: random.Random) -> tuple[Counter[str], list[str]]:
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    todo = iter(range(requests))

    async def one(client: httpx.AsyncClient) -> None:
        for _ in todo:
            method, path, body = _request(rng)
            try:
                response = await client.request(method, path, json=body)
                statuses[str(response.status_code)] += 1
                if response.status_code >= 500:
                    failures.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
            except httpx.HTTPError as exc:
                statuses["connection error"] += 1
                failures.append(f"{method} {path}: {type(exc).__name__} {exc}")

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(one(client) for _ in range(clients)))
    return statuses, failures


async def _half_written() -> int:
    """Document rows whose chunk count their stored chunks do not match."""
    conn = await asyncpg.connect(f"{PG}/{DATABASE}")
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM vr_documents d WHERE d.chunk_count <> (SELECT count(*) FROM vr_chunks c "
            "WHERE c.collection = d.collection AND c.doc_id = d.doc_id)"
        )
    finally:
        await conn.close()


def pg_kills(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for run in range(args.runs):
        rng = random.Random(run)
        asyncio.run(_fresh_database())
        env = {
            "VOICERAG_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}",
            "VOICERAG_REDIS_URL": "redis://127.0.0.1:6379/13",
        }
        folder = contextlib.nullcontext(tempfile.mkdtemp(dir=args.keep)) if args.keep else tempfile.TemporaryDirectory()
        with folder as tmp, voicerag_serve(Path(tmp) / "data", env=env) as (_, url):
            seed = [{"id": f"d{i}", "text": _text(rng, 20)} for i in range(40)]
            seeded = httpx.post(f"{url}/v1/collections/probe/documents", json={"documents": seed}, timeout=300)
            seeded.raise_for_status()
            statuses, failures, killed, seconds = asyncio.run(_attack(url, args, rng))
            half = asyncio.run(_half_written())
        five_xx = sum(n for s, n in statuses.items() if s.startswith("5") or s == "connection error")
        runs.append(
            {
                "run": run + 1,
                "requests": sum(statuses.values()),
                "seconds": round(seconds, 1),
                "connections_killed": killed,
                "statuses": dict(sorted(statuses.items())),
                "5xx_or_connection_errors": five_xx,
                "half_written_documents": half,
                "failures": failures[:20],
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    return {"fault": "PostgreSQL backends killed during mixed read/write load", "clients": args.clients, "runs": runs}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _understated_docx(inflated_mb: int) -> bytes:
    """A .docx whose word/document.xml inflates to ``inflated_mb`` while its zip entries say 4 KB."""
    original = zipfile.ZipFile(io.BytesIO(make_docx(["A real paragraph."])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for item in original.infolist():
            if item.filename != "word/document.xml":
                copy.writestr(item.filename, original.read(item.filename))
        with copy.open("word/document.xml", "w") as part:
            part.write(b"<a>")
            block = b" " * 2**20
            for _ in range(inflated_mb):
                part.write(block)
            part.write(b"</a>")
    return understate_zip_entry(out.getvalue(), "word/document.xml")


def docx_bomb(args: argparse.Namespace) -> dict[str, Any]:
    bomb = _understated_docx(args.inflated_mb)
    with tempfile.TemporaryDirectory() as tmp, voicerag_serve(Path(tmp) / "data") as (server, url):
        httpx.post(
            f"{url}/v1/collections/probe/documents", json={"documents": [{"id": "a", "text": "Warm up."}]}, timeout=120
        ).raise_for_status()
        before = _rss_mb(server.pid)
        peak = before
        done: dict[str, Any] = {}

        def upload() -> None:
            response = httpx.post(
                f"{url}/v1/collections/probe/files", files={"files": ("bomb.docx", bomb)}, timeout=600
            )
            done["status"], done["body"] = response.status_code, response.text[:300]

        import threading

        thread = threading.Thread(target=upload)
        thread.start()
        while thread.is_alive():
            peak = max(peak, _rss_mb(server.pid))
            thread.join(0.01)
        after = _rss_mb(server.pid)
        peak = max(peak, after)
    return {
        "fault": "a .docx whose zip under-states word/document.xml",
        "declared_kb": 4,
        "inflated_mb": args.inflated_mb,
        "upload_bytes": len(bomb),
        "status": done["status"],
        "body": done["body"],
        "server_rss_mb": {"before": round(before, 1), "peak": round(peak, 1), "after": round(after, 1)},
        "growth_mb": round(peak - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="probe", required=True)
    kills = sub.add_parser("pg-kills")
    kills.add_argument("--runs", type=int, default=3)
    kills.add_argument("--requests", type=int, default=2000)
    kills.add_argument("--clients", type=int, default=8)
    kills.add_argument("--keep", type=Path, help="run the servers in this folder (their serve-PORT.log are kept)")
    bomb = sub.add_parser("docx-bomb")
    bomb.add_argument("--inflated-mb", type=int, default=1536)
    for p in (kills, bomb):
        p.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.pop("VOICERAG_DATA_DIR", None)
    report = pg_kills(args) if args.probe == "pg-kills" else docx_bomb(args)
    report["command"] = "python scripts/probe_faults.py " + " ".join(sys.argv[1:])
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

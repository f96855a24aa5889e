"""Serve, ingest, search, ask, list and delete; maintenance and the ingestion worker."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from voicerag.cli.common import (
    DEFAULT_COLLECTION,
    Collection,
    Collections,
    JsonFlag,
    Mode,
    app,
    console,
    folding_table,
    out,
    print_json,
    progress_bar,
    run_with_rag,
    say_error,
    say_note,
    settings_or_exit,
)
from voicerag.errors import VoiceRAGError


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

    settings = settings_or_exit()
    host = host or settings.host
    port = port or settings.port
    if not _loopback(host):  # reachable from other machines: every route but health needs a key
        if not run_with_rag(lambda rag: rag.keys.any_active(), settings):
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
        say_error(f"no such file or folder: {', '.join(missing)}")
        raise typer.Exit(2)

    import asyncio

    async def work(rag: Any) -> Any:
        documents = await asyncio.to_thread(load_paths, paths, skipped)
        if not documents:  # nothing readable: create nothing
            return None
        if queued:
            return await rag.enqueue_ingest(collection, documents, skipped or [])
        with progress_bar("embedding chunks", quiet=as_json) as bar:
            task = bar.add_task("ingest", total=None)
            return await rag.ingest(
                collection, documents, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )

    result = run_with_rag(work)
    if result is None:
        if not skipped:
            say_error(f"no supported files under {', '.join(map(str, paths))}")
            raise typer.Exit(1)
        if as_json:
            print_json({"collection": collection, "documents": 0, "skipped": skipped})
    elif queued:
        if as_json:
            print_json(result.to_json())
        else:
            out.print(
                f"queued job {result.id}: {result.documents} documents into {collection} (GET /v1/jobs/{result.id})"
            )
    elif as_json:
        print_json(result.to_json() | {"skipped": skipped or []})
    else:
        out.print(
            f"{collection}: {result.documents} documents ({result.added} added, {result.updated} updated, "
            f"{result.unchanged} unchanged), {result.chunks} chunks in {result.seconds:.2f} s "
            f"({result.docs_per_s:.1f} docs/s, {result.chunks_per_s:.1f} chunks/s)"
        )
    if skipped:
        say_note(f"skipped {len(skipped)} unreadable file(s):", "yellow")
        for entry in skipped:
            error = entry["error"]  # loaders' messages start with the file's name already
            console.print(f"  {error}" if error.startswith(entry["file"]) else f"  {entry['file']}: {error}")
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
    sources = run_with_rag(lambda rag: rag.search(query, collection, mode, k))
    if as_json:
        print_json({"query": query, "results": _source_rows(sources)})
        return
    table = folding_table("#", "score", "document", "text")
    for s in sources:
        table.add_row(str(s.n), f"{s.score:.4f}", s.document_id, s.text[:160])
    out.print(table)


@app.command()
def ask(
    question: str,
    collection: Collections = [DEFAULT_COLLECTION],  # noqa: B006
    mode: Mode = None,
    k: Annotated[int | None, typer.Option("-k", help="sources to retrieve")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also print the timings per stage")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Ask a question; prints the grounded answer and its sources."""
    answer = run_with_rag(lambda rag: rag.ask(question, collection, mode, k))
    if as_json:
        print_json(answer.to_json())
        return
    out.print(answer.text)
    if answer.fallback:
        say_note(f"(extractive fallback: {answer.fallback_reason})", "yellow")
    if answer.found:
        for s in answer.sources:
            out.print(f"  [{s.n}] {s.title or s.document_id} ({s.document_id}, score {s.score:.4f})")
    if verbose:
        timings = ", ".join(f"{stage} {ms:.1f} ms" for stage, ms in answer.timings_ms.items())
        say_note(f"{answer.generator}{', cached' if answer.cached else ''}: {timings}", "dim")


@app.command()
def collections(as_json: JsonFlag = False) -> None:
    """List collections with their document and chunk counts."""
    rows = run_with_rag(lambda rag: rag.list_collections())
    if as_json:
        print_json({"collections": rows})
        return
    table = folding_table("collection", "documents", "chunks", "generation")
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

    run_with_rag(work)
    out.print(f"deleted {', '.join(document) if document else 'collection ' + collection}")


# ---- maintenance -------------------------------------------------------------------------------------------


@app.command()
def maintenance(as_json: JsonFlag = False) -> None:
    """Purge expired cache entries and audio beyond its budget, refresh the store's statistics, compact or
    rebuild indexes that call for it, and advise on pools. Safe while a server runs on the same store."""
    report = run_with_rag(lambda rag: _maintain(rag))
    if as_json:
        print_json(report)
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

    settings = settings_or_exit()
    try:
        options = worker_settings(settings.redis_url, settings.job_timeout_s, max_jobs)
    except VoiceRAGError as exc:
        console.print(exc.detail)
        raise typer.Exit(1) from None
    Worker(**options, burst=burst).run()

"""REST routes: collections, documents, search, ask (JSON or server-sent events), cache, health, metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from voicerag.api.schemas import (
    SSE_RESPONSES,
    AlertOut,
    AlertsOut,
    AnswerOut,
    CollectionOut,
    CollectionsOut,
    ConfigChangedOut,
    ConfigOut,
    ConfigPatchIn,
    CreatedCollectionOut,
    DeletedDocumentOut,
    DeletedOut,
    DocumentDetailOut,
    DocumentsOut,
    IngestOut,
    JobOut,
    MaintenanceOut,
    MemoryOut,
    PolicyStatsOut,
    ReadyOut,
    RemovedOut,
    SearchOut,
    StatusOut,
)
from voicerag.app import VoiceRAG
from voicerag.auth import ANONYMOUS, Principal
from voicerag.config import ConfigError
from voicerag.documents.loaders import Document, load_bytes
from voicerag.errors import InvalidInput, TooLarge, Unauthorized, UnknownCollection, VoiceRAGError
from voicerag.operations.memory import memory_report
from voicerag.validation import collection_names


async def get_rag(connection: HTTPConnection) -> VoiceRAG:
    """The app's VoiceRAG (async: a plain ``def`` dependency would cost a thread hop per request)."""
    return connection.app.state.rag


Rag = Annotated[VoiceRAG, Depends(get_rag)]


async def authenticate(rag: VoiceRAG, authorization: str | None) -> Principal:
    """The caller behind an ``Authorization: Bearer KEY`` value. Auth is on when the server requires it (a
    non-loopback bind) or any key exists; otherwise everyone is ``anonymous`` with every right."""
    if not (rag.settings.require_api_key or await rag.keys.any_active()):
        return ANONYMOUS
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized(
            "this server needs an API key: send 'Authorization: Bearer KEY' (an admin creates one with "
            "'voicerag keys create --name NAME --scope read:COLLECTION')"
        )
    principal = await rag.keys.verify(key.strip())
    if principal is None:
        raise Unauthorized("the API key is unknown, revoked or expired")
    return principal


async def get_principal(request: Request, rag: Rag) -> Principal:
    """The caller, authenticated and within its rate limit; an address whose requests keep failing to
    authenticate is rate-limited too (429), so guessing keys is slow."""
    address = f"address {request.client.host if request.client else '?'}"
    try:
        principal = await authenticate(rag, request.headers.get("authorization"))
    except Unauthorized:
        await request.app.state.auth_failures.take(f"failed authentication from {address}", rag.pools.redis)
        raise
    caller = principal.name if principal is not ANONYMOUS else address
    await request.app.state.limiter.take(caller, rag.pools.redis)
    return principal


Caller = Annotated[Principal, Depends(get_principal)]

health = APIRouter()  # no key needed: load balancers and orchestrators probe these
router = APIRouter(dependencies=[Depends(get_principal)])  # every other route needs a key when auth is on


class DocumentIn(BaseModel):
    id: str = Field(min_length=1, max_length=1024)
    text: str = Field(min_length=1)
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentsIn(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1)


class _Query(BaseModel):
    collections: list[str] | None = None
    collection: str | None = None
    mode: Literal["dense", "lexical", "hybrid"] | None = None
    k: int | None = None

    def names(self) -> list[str]:
        return collection_names(self.collection, self.collections)


class SearchIn(_Query):
    query: str


class AskIn(_Query):
    question: str
    stream: bool = False


# ---- health and metrics ------------------------------------------------------------------------------------


@health.get("/healthz", tags=["health"])
async def healthz() -> StatusOut:
    """The process is up."""
    return StatusOut(status="ok")


@health.get("/readyz", tags=["health"], response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def readyz(rag: Rag) -> JSONResponse:
    """Ready when the database answers and every collection's indexes are loaded; pool figures."""
    checks = await rag.health()
    ready = checks["database"]["ok"] and checks.get("schema", {}).get("ok", False) and rag.ready
    alerts = [a.to_json() for a in rag.alerts.active.values()]
    status = (
        ("degraded" if alerts else "ready") if ready else ("warming" if checks["database"]["ok"] else "unavailable")
    )
    body = {"status": status, "checks": checks, "pools": rag.pools.stats(), "alerts": alerts}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", tags=["health"], response_class=PlainTextResponse)
async def metrics(rag: Rag, caller: Caller) -> Response:
    """Prometheus text format (admin scope)."""
    caller.require_admin()
    return Response(rag.metrics.render(rag.cache, rag.pools), media_type="text/plain; version=0.0.4")


# ---- collections and documents -----------------------------------------------------------------------------


@router.get("/v1/collections", tags=["documents"])
async def list_collections(rag: Rag, caller: Caller) -> CollectionsOut:
    """The collections the key may read."""
    return CollectionsOut.model_validate(
        {"collections": [c for c in await rag.list_collections() if caller.can("read", c["name"])]}
    )


@router.get("/v1/collections/{name}", tags=["documents"])
async def get_collection(name: str, rag: Rag, caller: Caller) -> CollectionOut:
    caller.require("read", [name])
    for c in await rag.list_collections():
        if c["name"] == name:
            return CollectionOut.model_validate(c)
    raise UnknownCollection(f"collection {name!r} does not exist")


@router.put("/v1/collections/{name}", tags=["documents"], status_code=201)
async def create_collection(name: str, rag: Rag, caller: Caller) -> CreatedCollectionOut:
    """Create an empty collection (ingesting into a missing one creates it too)."""
    caller.require("write", [name])
    generation = await rag.create_collection(name)
    return CreatedCollectionOut(name=name, generation=generation)


@router.delete("/v1/collections/{name}", tags=["documents"])
async def delete_collection(name: str, rag: Rag, caller: Caller) -> DeletedOut:
    caller.require("write", [name])
    await rag.delete_collection(name)
    return DeletedOut(deleted=name)


@router.post("/v1/collections/{name}/documents", tags=["documents"])
async def add_documents(name: str, body: DocumentsIn, rag: Rag, caller: Caller) -> IngestOut:
    """Add or replace documents given as JSON. Unchanged documents are skipped."""
    caller.require("write", [name])
    if len(body.documents) > rag.settings.max_documents_per_request:
        raise TooLarge(
            f"{len(body.documents)} documents in one request; at most {rag.settings.max_documents_per_request}"
        )
    docs = [Document(d.id, d.text, d.title, d.metadata) for d in body.documents]
    return IngestOut.model_validate((await rag.ingest(name, docs)).to_json())


@router.post(
    "/v1/collections/{name}/files",
    tags=["documents"],
    response_model=IngestOut,
    responses={202: {"model": JobOut, "description": "queued (async=true): follow /v1/jobs/{id}"}},
)
async def upload_files(
    name: str,
    rag: Rag,
    caller: Caller,
    files: Annotated[list[UploadFile], File(description="txt, md, html, pdf, docx or jsonl files")],
    document_id: Annotated[str | None, Form(description="id for a single uploaded file")] = None,
    queued: Annotated[bool, Query(alias="async", description="queue for 'voicerag worker' and answer 202")] = False,
) -> Any:
    """Upload files (multipart). At once: every file is parsed before anything is stored, and one bad file
    stores nothing. With ``async=true``: the readable files are queued as a job (202), unreadable ones are
    listed in the job's ``errors``."""
    caller.require("write", [name])
    if document_id is not None and len(files) != 1:
        raise InvalidInput("document_id can only be given with exactly one file")
    docs: list[Document] = []
    errors: list[dict[str, str]] = []
    for upload in files:
        data = await upload.read()
        filename = upload.filename or "upload.txt"
        try:
            docs.extend(load_bytes(data, filename, doc_id=document_id or filename))
        except VoiceRAGError as exc:
            if not queued:
                raise
            errors.append({"file": filename, "detail": exc.detail})
    if not queued:
        return IngestOut.model_validate((await rag.ingest(name, docs)).to_json())
    if not docs:
        raise InvalidInput("no file could be read: " + "; ".join(e["detail"] for e in errors))
    job = await rag.enqueue_ingest(name, docs, errors)
    return JSONResponse(JobOut.model_validate(job.to_json()).model_dump(mode="json"), status_code=202)


@router.get("/v1/jobs/{job_id}", tags=["documents"])
async def get_job(job_id: Annotated[str, Path(max_length=36)], rag: Rag, caller: Caller) -> JobOut:
    """A queued ingest: status (queued, running, done, failed), chunks done of all, per-file errors, result."""
    job = await rag.jobs.get(job_id)
    caller.require("read", [job.collection])
    return JobOut.model_validate(job.to_json())


@router.get("/v1/collections/{name}/documents", tags=["documents"])
async def list_documents(
    name: str,
    rag: Rag,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> DocumentsOut:
    caller.require("read", [name])
    return DocumentsOut.model_validate({"documents": await rag.list_documents(name, limit, offset)})


@router.get("/v1/collections/{name}/documents/{doc_id:path}", tags=["documents"])
async def get_document(name: str, doc_id: str, rag: Rag, caller: Caller) -> DocumentDetailOut:
    caller.require("read", [name])
    return DocumentDetailOut.model_validate(await rag.get_document(name, doc_id))


@router.delete("/v1/collections/{name}/documents/{doc_id:path}", tags=["documents"])
async def delete_document(name: str, doc_id: str, rag: Rag, caller: Caller) -> DeletedDocumentOut:
    caller.require("write", [name])
    generation = await rag.delete_documents(name, [doc_id])
    return DeletedDocumentOut(deleted=doc_id, generation=generation)


# ---- search and ask ----------------------------------------------------------------------------------------


@router.post("/v1/search", tags=["query"])
async def search(body: SearchIn, rag: Rag, caller: Caller) -> SearchOut:
    timings: dict[str, float] = {}
    caller.require("read", body.names())
    sources = await rag.search(body.query, body.names(), body.mode, body.k, timings)
    return SearchOut.model_validate({"results": [s.to_json() for s in sources], "timings_ms": timings})


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/v1/ask", tags=["query"], response_model=AnswerOut, responses=SSE_RESPONSES)
async def ask(body: AskIn, rag: Rag, caller: Caller) -> Any:
    """A grounded answer with sources. With ``stream: true``, server-sent events: sources, delta, fallback,
    done (the whole answer), error."""
    names = body.names()
    caller.require("read", names)
    if not body.stream:
        return (await rag.ask(body.question, names, body.mode, body.k)).to_json()
    events = rag.ask_stream(body.question, names, body.mode, body.k)
    first = await anext(events)  # validation errors surface here, as a 4xx, before the stream starts

    async def generate() -> AsyncIterator[str]:
        yield sse(first.kind, first.to_json())
        try:
            async for event in events:
                yield sse(event.kind, event.to_json())
        except Exception as exc:
            yield sse("error", {"detail": str(exc) or type(exc).__name__})

    return StreamingResponse(generate(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# ---- cache ---------------------------------------------------------------------------------------------------


@router.get("/v1/cache/stats", tags=["cache"])
async def cache_stats(rag: Rag, caller: Caller) -> dict[str, PolicyStatsOut]:
    """Per policy: hits, misses, hit rate and per-tier figures (admin scope)."""
    caller.require_admin()
    return {name: PolicyStatsOut.model_validate(s) for name, s in rag.cache.stats_json().items()}


@router.delete("/v1/cache", tags=["cache"])
async def cache_clear(
    rag: Rag,
    caller: Caller,
    policy: str | None = None,
    collection: str | None = None,
    pattern: str | None = None,
) -> RemovedOut:
    """Invalidate by policy, by collection, by key pattern (glob over ``vr1:POLICY:HASH``), or everything
    (admin scope)."""
    caller.require_admin()
    try:
        removed = await rag.cache.invalidate(
            policy=policy, tag=f"collection:{collection}" if collection else None, pattern=pattern
        )
    except KeyError:
        raise InvalidInput(f"unknown cache policy {policy!r}; one of {', '.join(rag.cache.policies)}") from None
    return RemovedOut(removed=removed)


@router.post("/v1/admin/maintenance", tags=["admin"])
async def maintenance(rag: Rag, caller: Caller) -> MaintenanceOut:
    """Maintenance, safe while serving (admin scope): expired cache entries, store statistics, index
    compaction and rebuilds where called for, pool advice."""
    caller.require_admin()
    return MaintenanceOut.model_validate(await rag.maintain())


@router.get("/v1/admin/memory", tags=["admin"])
async def memory(rag: Rag, caller: Caller) -> MemoryOut:
    """Where this process's memory goes: RSS, the C heap, Python's heap (the top lines when started with
    PYTHONTRACEMALLOC=1), the caches and the read model (admin scope)."""
    caller.require_admin()
    return MemoryOut.model_validate(memory_report(rag))


@router.get("/v1/admin/alerts", tags=["admin"])
async def alerts(rag: Rag, caller: Caller) -> AlertsOut:
    """The performance alerts active now, evaluated on the rolling window at this request (admin scope)."""
    caller.require_admin()
    return AlertsOut(
        alerts=[AlertOut(**a.to_json()) for a in rag.alerts.evaluate()], window_s=rag.settings.alert_window_s
    )


@router.get("/v1/admin/config", tags=["admin"])
async def get_config(rag: Rag, caller: Caller) -> ConfigOut:
    """Every setting: its value (secrets masked), whether it can change live, and who changed it (admin scope)."""
    caller.require_admin()
    return ConfigOut.model_validate({"settings": rag.live.describe()})


@router.patch("/v1/admin/config", tags=["admin"])
async def patch_config(body: ConfigPatchIn, rag: Rag, caller: Caller) -> ConfigChangedOut:
    """Change settings while serving, on every replica (admin scope). Validated as at start-up: a bad value
    changes nothing and the answer says why; a setting that needs a restart is refused."""
    caller.require_admin()
    try:
        changed = await rag.live.change(body.settings, by=f"key {caller.name}")
    except ConfigError as exc:
        raise InvalidInput("; ".join(exc.problems)) from None
    return ConfigChangedOut(changed=changed)


@router.delete("/v1/cache/{policy}", tags=["cache"])
async def cache_clear_policy(policy: str, rag: Rag, caller: Caller) -> RemovedOut:
    return await cache_clear(rag, caller, policy=policy)

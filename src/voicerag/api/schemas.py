"""What each route answers: declared models, so the OpenAPI schema says what comes back and responses are
checked and serialised by pydantic."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from voicerag.answer.types import Source  # a dataclass: pydantic validates and documents it as it is


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusOut(Out):
    status: str


class AlertOut(Out):
    name: str = Field(description="what crossed its threshold, e.g. latency_p95:/v1/search")
    value: float
    threshold: float
    message: str
    since: float = Field(description="unix seconds")


class AlertsOut(Out):
    alerts: list[AlertOut]
    window_s: float


class ReadyOut(Out):
    status: str = Field(description="ready, degraded (ready, with active alerts), warming or unavailable")
    checks: dict[str, dict[str, Any]]
    pools: dict[str, Any]
    alerts: list[AlertOut] = []


class SettingOut(Out):
    value: Any
    live: bool = Field(description="whether it can change at run time (otherwise it needs a restart)")
    changed_by: str | None = None
    changed_at: float | None = None
    started_with: Any = None


class ConfigOut(Out):
    settings: dict[str, SettingOut]


class ConfigPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    settings: dict[str, Any] = Field(
        description="setting -> new value (null: back to the start-up value); all apply or none", max_length=100
    )


class ConfigChangedOut(Out):
    changed: dict[str, list[Any]] = Field(description="setting -> [old, new]")


class CollectionOut(Out):
    name: str
    generation: int
    created_at: str | None
    documents: int
    chunks: int


class CollectionsOut(Out):
    collections: list[CollectionOut]


class CreatedCollectionOut(Out):
    name: str
    generation: int


class DeletedOut(Out):
    deleted: str


class DeletedDocumentOut(Out):
    deleted: str
    generation: int


class IngestOut(Out):
    collection: str
    documents: int
    added: int
    updated: int
    unchanged: int
    chunks: int
    seconds: float
    generation: int
    docs_per_s: float
    chunks_per_s: float


class JobOut(Out):
    id: str
    collection: str
    status: str
    documents: int
    chunks_total: int
    chunks_done: int
    attempts: int
    errors: list[dict[str, str]]
    result: dict[str, Any] | None
    created_at: str
    updated_at: str


class DocumentOut(Out):
    id: str
    collection: str
    title: str
    metadata: dict[str, Any]
    chars: int
    chunks: int
    content_hash: str
    updated_at: str


class DocumentDetailOut(DocumentOut):
    chunk_texts: list[str]


class DocumentsOut(Out):
    documents: list[DocumentOut]


class SearchOut(Out):
    results: list[Source]
    timings_ms: dict[str, float]


class AnswerOut(Out):
    answer: str
    sources: list[Source]
    generator: str
    found: bool = Field(description="false: the documents hold no answer, and the answer says so")
    confidence: float | None = Field(description="the best sentence's similarity to the question")
    fallback: bool
    fallback_reason: str | None
    timings_ms: dict[str, float]
    cached: bool
    semantic_similarity: float | None


class RemovedOut(Out):
    removed: dict[str, int]


class PolicyStatsOut(Out):
    hits: int
    misses: int
    hit_rate: float
    computes: int
    coalesced: int
    corrupt: int
    ttl_s: float
    tiers: dict[str, dict[str, Any]]


class MaintenanceOut(Out):
    cache_entries_removed: dict[str, int]
    store: list[str]
    indexes: list[dict[str, Any]]
    pool_advice: list[str]
    memory_released_mb: float | None
    seconds: float


class MemoryOut(Out):
    rss_mb: float
    c_heap: dict[str, float] | None = Field(description="glibc's heap: in use, free but held, mapped (MB)")
    python: dict[str, Any]
    cache_mb: dict[str, float]
    cache_budget_mb: float
    read_model: dict[str, Any]


class TranscriptOut(Out):
    text: str
    language: str | None
    duration_s: float
    model: str
    segments: list[dict[str, Any]]
    seconds: float
    cached: bool
    fallback: bool


class AudioOut(Out):
    format: str
    sample_rate: int
    seconds: float
    url: str | None = None
    expires_in_s: int | None = None
    base64: str | None = None


class VoiceAnswerOut(AnswerOut):
    transcript: TranscriptOut
    audio: AudioOut


class ModelOut(Out):
    id: str
    object: str
    created: int
    owned_by: str


class ModelsOut(Out):
    object: str
    data: list[ModelOut]


class EmbeddingOut(Out):
    object: str
    index: int
    embedding: list[float] | str


class EmbeddingsOut(Out):
    object: str
    data: list[EmbeddingOut]
    model: str
    usage: dict[str, int]


class ChatCompletionOut(BaseModel):
    """OpenAI's chat.completion, with the sources and VoiceRAG's own figures alongside."""

    id: str
    object: str
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    sources: list[Source]
    voicerag: dict[str, Any]


class TranscriptionOut(BaseModel):
    """OpenAI's transcription (``json``); ``verbose_json`` adds language, duration and segments."""

    text: str
    task: str | None = None
    language: str | None = None
    duration: float | None = None
    segments: list[dict[str, Any]] | None = None


AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {t: {} for t in ("audio/wav", "audio/mpeg", "audio/ogg", "audio/flac", "audio/aac")}}
}
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}}}

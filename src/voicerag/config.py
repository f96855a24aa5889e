"""Settings: environment variables ``VOICERAG_*``, an optional TOML file, presets, validation, advice."""

from __future__ import annotations

import math
import os
import tomllib
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

IndexType = Literal["auto", "flat", "ivf", "hnsw"]
SearchMode = Literal["dense", "lexical", "hybrid"]

PRESETS: dict[str, dict[str, Any]] = {
    "development": {
        "log_level": "DEBUG",
        "index_type": "flat",
        "db_pool_size": 2,
        "db_max_overflow": 2,
        "http_max_connections": 10,
        "redis_max_connections": 10,
        "cpu_concurrency": 2,
        "cache_memory_mb": 64,
        "semantic_cache": False,
    },
    "production": {
        "log_level": "INFO",
        "index_type": "auto",
        "db_pool_size": 10,
        "db_max_overflow": 10,
        "http_max_connections": 100,
        "redis_max_connections": 50,
        "cpu_concurrency": 4,
        "cache_memory_mb": 256,
        "semantic_cache": False,
    },
    "high_performance": {
        "log_level": "WARNING",
        "index_type": "hnsw",
        "db_pool_size": 20,
        "db_max_overflow": 20,
        "http_max_connections": 200,
        "redis_max_connections": 100,
        "cpu_concurrency": 8,
        "cache_memory_mb": 1024,
        "semantic_cache": True,
    },
}


_CONFIG_FILE: ContextVar[Path | None] = ContextVar("voicerag_config_file", default=None)


def _config_file() -> Path | None:
    """The TOML file: the one passed to load_settings, else ``VOICERAG_CONFIG``."""
    path = _CONFIG_FILE.get() or os.environ.get("VOICERAG_CONFIG")
    return Path(path) if path else None


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``VOICERAG_CONFIG`` (keys as the field names, top level or [voicerag])."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        if not self.path.is_file():
            raise ConfigError([f"config file {self.path} does not exist"])
        try:
            data = tomllib.loads(self.path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"config file {self.path} is not valid TOML: {exc}"]) from exc
        return data.get("voicerag", data)


NUMBER_LIMIT = 2**31 - 1  # the largest number any setting takes: bigger ones are typos or attacks
LEGACY_DATA_DIR = Path("data")  # the default before 0.2: ./data under whatever folder a command ran from


def default_data_dir() -> Path:
    """Where the store lives when no setting says: one folder per user (platformdirs: ~/.local/share/voicerag
    on Linux), so every command, the library and the server use the same store wherever they run from. A
    ``./data`` that holds an older release's store is used instead (the CLI says so), never silently ignored."""
    if (LEGACY_DATA_DIR / "voicerag.db").is_file():
        return LEGACY_DATA_DIR
    import platformdirs

    return Path(platformdirs.user_data_dir("voicerag", appauthor=False))


class Settings(BaseSettings):
    """Every knob of VoiceRAG. Defaults run fully offline on one machine."""

    model_config = SettingsConfigDict(env_prefix="VOICERAG_", extra="forbid", validate_default=True)

    preset: Literal["development", "production", "high_performance"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="the store: the per-user data folder, unless ./data holds an older release's store",
    )
    database_url: str | None = Field(None, description="SQLAlchemy async URL; default SQLite under data_dir")
    redis_url: str | None = Field(None, description="enables the Redis cache tier and cross-replica invalidation")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    # documents
    chunk_words: int = Field(120, ge=16, le=2000, description="target chunk length in words")
    chunk_overlap_words: int = Field(24, ge=0, le=1000)
    max_upload_mb: float = Field(50.0, gt=0)
    max_question_chars: int = Field(2000, ge=10, le=1_000_000)
    max_k: int = Field(100, ge=1, le=1000)
    max_documents_per_request: int = Field(1000, ge=1)
    max_embedding_inputs: int = Field(256, ge=1, description="/v1/embeddings: inputs per request")
    max_embedding_chars: int = Field(200_000, ge=1, description="/v1/embeddings: characters per request")
    max_speech_chars: int = Field(3000, ge=1, description="text to speak per request (about 3 minutes of speech)")
    ingest_batch_docs: int = Field(
        256, ge=1, le=100_000, description="documents per ingest transaction: bounds memory and what a crash loses"
    )

    # embeddings
    embedder: Literal["local", "openai"] = "local"
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_api_base: str = "https://api.openai.com/v1"
    embedding_api_key: str | None = None
    embedding_dimensions: int = Field(384, ge=2)
    embed_batch_size: int = Field(32, ge=1, le=1024)
    onnx_threads: int = Field(2, ge=1, le=64)
    onnx_spin: bool = Field(False, description="ONNX Runtime's threads spin between calls (cores to spare only)")

    # index and search
    vector_backend: Literal["faiss", "pgvector"] = Field(
        "faiss", description="faiss: an index in each process; pgvector: one shared index in the PostgreSQL store"
    )
    index_type: IndexType = "auto"
    hnsw_threshold: int = Field(20_000, ge=0, description="auto: FLAT below this many vectors, HNSW above")
    index_memory_budget_mb: float = Field(4096, gt=0, description="auto: IVF when HNSW would exceed this")
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_construction: int = Field(100, ge=8)
    hnsw_ef_search: int = Field(128, ge=8, le=4096)
    ivf_nprobe: int = Field(48, ge=1, le=65_536)
    search_mode: SearchMode = "hybrid"
    top_k: int = Field(5, ge=1, le=1000)
    fusion: Literal["rrf", "convex"] = Field(
        "convex",
        description="hybrid: a convex combination of normalised scores (SQuAD nDCG@10 0.863), or reciprocal rank "
        "fusion (0.832; docs/ANSWERS.md)",
    )
    fusion_alpha: float = Field(0.5, ge=0, le=1, description="convex fusion: the dense side's weight")
    rrf_k: int = Field(60, ge=1, le=100_000)
    candidates: int = Field(50, ge=1, le=10_000, description="per-mode candidates before fusion")
    cpu_concurrency: int = Field(2, ge=1, le=256, description="concurrent CPU-bound model calls")
    retrieval_workers: int = Field(1, ge=1, le=64, description="searches run as batches on this many threads at once")
    retrieval_max_batch: int = Field(64, ge=1, le=1024, description="most searches in one worker call")
    read_model_text_mb: float = Field(
        1024, ge=0, description="chunk texts kept in memory for search results; beyond it they are read in one query"
    )
    index_save_interval_s: float = Field(
        60.0, ge=0, description="index files are saved at most this often (a restart catches up from the store)"
    )
    job_timeout_s: float = Field(
        3600, gt=0, description="an ingestion job's longest run; a job whose worker died is retried after this"
    )
    sqlite_poll_interval_ms: float = Field(
        20.0, gt=0, le=10_000, description="SQLite: how often other processes' commits are looked for"
    )
    sync_interval_s: float = Field(
        5.0, ge=0.05, description="replicas compare generations with the store this often, besides change notices"
    )
    max_inflight_requests: int = Field(
        64, ge=1, description="query requests (search, ask, chat) served at once; more wait in the queue"
    )
    max_queued_requests: int = Field(
        256, ge=0, description="query requests that may wait; beyond it they get 503 with Retry-After"
    )
    api_key_cache_s: float = Field(
        10.0, ge=0, description="verified keys are trusted this long before the store is asked again (revocation)"
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="other web origins trusted for the websocket and for changes"
    )
    cors_origins: list[str] = Field(default_factory=list, description="origins given CORS access (off when empty)")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names requests may name (empty: loopback names while no key is needed, any with keys)",
    )
    rate_limit_per_s: float = Field(
        0, ge=0, description="requests per second per key (per address without keys); 0: off"
    )
    rate_limit_burst: int = Field(50, ge=1, description="requests a caller may make at once above its rate")
    auth_failures_per_s: float = Field(
        0.2, ge=0, description="requests with a missing or unknown key an address may make per second (429 beyond)"
    )
    auth_failures_burst: int = Field(20, ge=1, description="failed authentications an address may make at once")
    require_api_key: bool = Field(
        False, description="every route but health needs a key (serve turns it on for a non-loopback address)"
    )
    access_log: bool = Field(False, description="serve: uvicorn's access log (off: one line per request costs CPU)")

    # answers
    generator: Literal["extractive", "llm"] = "extractive"
    answer_sentences: int = Field(2, ge=1, le=10)
    answer_min_confidence: float = Field(
        0.2, ge=0, le=1, description="answers: below this confidence that the sources answer, say nothing was found"
    )
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(30.0, gt=0)
    llm_first_token_timeout_s: float = Field(15.0, gt=0)
    llm_max_tokens: int = Field(512, ge=1)
    llm_temperature: float = Field(0.1, ge=0, le=2)

    # speech in
    stt: Literal["local", "openai"] = "local"
    stt_language: str | None = Field("en", description="spoken language (ISO 639-1); None lets Whisper detect it")
    stt_beam_size: int = Field(1, ge=1, le=10)
    stt_vad: bool = Field(True, description="skip non-speech with Silero VAD before decoding")
    stt_threads: int = Field(2, ge=1, le=64)
    stt_min_window_s: float = Field(
        15.0,
        ge=1,
        le=30,
        description="local Whisper: the encoder sees the speech plus a tail, at least this long (30: the whole window)",
    )
    stt_window_tail_s: float = Field(3.0, ge=0, le=30, description="local Whisper: padding kept after the speech")
    stt_api_base: str = "https://api.openai.com/v1"
    stt_api_key: str | None = None
    stt_remote_model: str = Field("whisper-1", description="whisper-1, gpt-4o-transcribe, ...")
    stt_timeout_s: float = Field(30.0, gt=0)
    stt_partial_interval_s: float = Field(1.0, gt=0, description="streaming: a partial transcript per this much audio")
    stt_end_silence_s: float = Field(0.5, gt=0, description="streaming: this much silence after speech ends a turn")
    stt_unfinished_silence_s: float = Field(
        1.0,
        gt=0,
        le=10,
        description="streaming: the silence that ends a turn whose words so far read unfinished ('How do I set "
        "the'), a speaker pausing mid-question; at least stt_end_silence_s",
    )
    stt_turn_end_threshold: float = Field(
        0.3,
        ge=0,
        le=1,
        description="streaming: below this probability of a finished turn (the end-of-turn model, read on the "
        "speculative transcript) the words read unfinished (0: never; every turn ends after stt_end_silence_s)",
    )
    stt_speculate_silence_s: float = Field(
        0.12, gt=0, description="streaming: after this much silence the final transcript and answer start, held"
    )
    stt_partial_window_s: float = Field(
        8.0, gt=0, description="streaming: partial transcripts cover at most this much of the latest audio"
    )
    speech_concurrency: int = Field(1, ge=1, le=64, description="concurrent local STT/TTS model calls")
    max_audio_mb: float = Field(25.0, gt=0)
    max_audio_seconds: float = Field(120.0, gt=0)

    # speech out
    tts: Literal["local", "openai", "elevenlabs"] = "local"
    tts_local: Literal["piper", "espeak"] = Field("piper", description="the local voice; espeak-ng is the fallback")
    tts_speed: float = Field(1.0, ge=0.25, le=4.0)
    tts_api_base: str = "https://api.openai.com/v1"
    tts_api_key: str | None = None
    tts_remote_model: str = "gpt-4o-mini-tts"
    tts_voice: str = Field("alloy", description="OpenAI voice name")
    elevenlabs_api_base: str = "https://api.elevenlabs.io"
    elevenlabs_api_key: str | None = None
    elevenlabs_voice_id: str = "21m00Tcm4TlvDq8ikWAM"
    elevenlabs_model: str = "eleven_flash_v2_5"
    tts_timeout_s: float = Field(15.0, gt=0)
    tts_cache_dir: Path | None = Field(None, description="TTS audio files; default data_dir/tts-cache")
    tts_cache_max_mb: float = Field(512, ge=0)
    voice_max_spoken_chars: int = Field(
        600, ge=1, description="voice answers: speak whole sentences up to about this many characters; show all"
    )
    voice_first_piece_chars: int = Field(
        40,
        ge=10,
        le=200,
        description="the first spoken piece is a clause of at most this many characters, cut at a natural break: "
        "the shorter, the sooner the first audio (Piper takes about 0.12 s more per 20 characters here)",
    )
    preload_speech: bool = Field(True, description="serve: load the speech models at startup, not on first use")

    # pools
    db_pool_size: int = Field(5, ge=1)
    db_max_overflow: int = Field(5, ge=0)
    db_pool_timeout_s: float = Field(10.0, gt=0)
    db_pool_recycle_s: int = Field(1800, ge=-1)
    http_max_connections: int = Field(50, ge=1)
    http_max_keepalive: int = Field(20, ge=0)
    http_timeout_s: float = Field(30.0, gt=0)
    http_connect_timeout_s: float = Field(5.0, gt=0)
    http_retries: int = Field(2, ge=0, le=10)
    redis_max_connections: int = Field(20, ge=1)
    redis_timeout_s: float = Field(0.25, gt=0)
    redis_health_check_s: int = Field(15, ge=0)

    # cache
    cache_enabled: bool = True
    cache_memory_mb: float = Field(128, ge=0)
    cache_sql: bool = True
    cache_redis: bool = True
    cache_write_behind: bool = Field(True, description="write Redis/SQL/disk tiers after the response, not before")
    cache_ttl_embedding_s: int = Field(7 * 86400, ge=1)
    cache_ttl_search_s: int = Field(3600, ge=1)
    cache_ttl_answer_s: int = Field(3600, ge=1)
    cache_ttl_tts_s: int = Field(30 * 86400, ge=1)
    cache_ttl_stt_s: int = Field(30 * 86400, ge=1)
    semantic_cache: bool = False
    semantic_cache_threshold: float = Field(0.95, ge=0, le=1)

    # alerts: evaluated inside the server on a rolling window; a threshold of 0 is off
    alert_window_s: float = Field(300, ge=1, le=86_400, description="alerts: the rolling window they look at")
    alert_interval_s: float = Field(10, ge=0.1, le=3600, description="alerts: how often they are evaluated")
    alert_min_requests: int = Field(
        20, ge=1, description="alerts: a route's p95 and error rate count once it has this many requests"
    )
    alert_p95_ms: float = Field(1000, ge=0, description="alert when a route's p95 latency is above this")
    alert_error_rate: float = Field(0.05, ge=0, le=1, description="alert when this share of requests get a 5xx")
    alert_cache_hit_floor: float = Field(0, ge=0, le=1, description="alert when the answer cache hit rate is below")
    alert_pool_saturation: float = Field(
        0.9, ge=0, le=1, description="alert when a pool has this share of its connections in use"
    )
    alert_sync_lag_ms: float = Field(5000, ge=0, description="alert when others' writes reach this replica late (p95)")
    alert_memory_mb: float = Field(0, ge=0, description="alert when the process's resident memory is above this")

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        for name in type(self).model_fields:  # every number is finite and within reason (no 1e308, no 2**63)
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and (not math.isfinite(value) or abs(value) > NUMBER_LIMIT):
                raise ValueError(f"{name} must be a finite number of at most {NUMBER_LIMIT} (got {value})")
        if self.chunk_overlap_words >= self.chunk_words:
            raise ValueError(
                f"chunk_overlap_words ({self.chunk_overlap_words}) must be smaller than "
                f"chunk_words ({self.chunk_words})"
            )
        if self.vector_backend == "pgvector" and not (self.database_url or "").startswith("postgresql+asyncpg://"):
            raise ValueError(
                "vector_backend pgvector needs a PostgreSQL store with the pgvector extension: set database_url "
                "(voicerag postgres start gives one)"
            )
        if self.database_url and not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {self.database_url.split('://')[0]}://)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls, _config_file())

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, or SQLite under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'voicerag.db').resolve()}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def resolved_tts_cache_dir(self) -> Path:
        return self.tts_cache_dir or self.data_dir / "tts-cache"


class ConfigError(ValueError):
    """Invalid settings: one message per bad value."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{where}: {msg} (got {err.get('input')!r})" if err["loc"] else msg)
    return out


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from env, the TOML file (argument or ``VOICERAG_CONFIG``) and overrides; apply the preset."""
    token = _CONFIG_FILE.set(Path(config_file) if config_file is not None else None)
    try:
        try:
            settings = Settings(**overrides)
        except ValidationError as exc:
            raise ConfigError(_problems(exc)) from None
        if settings.preset:
            settings, _ = apply_preset(settings.preset, settings, keep=_explicit_fields(settings, overrides))
        return settings
    finally:
        _CONFIG_FILE.reset(token)


def _explicit_fields(settings: Settings, overrides: dict[str, Any]) -> set[str]:
    """Fields the user set explicitly (env, file or argument): a preset does not override them."""
    explicit = set(overrides) | {name for name in Settings.model_fields if f"VOICERAG_{name.upper()}" in os.environ}
    path = _config_file()
    if path and path.is_file():
        data = tomllib.loads(path.read_text())
        explicit |= set(data.get("voicerag", data))
    return explicit


def apply_preset(
    name: str, settings: Settings, keep: set[str] | None = None
) -> tuple[Settings, dict[str, tuple[Any, Any]]]:
    """Return ``settings`` with preset ``name`` applied, and what changed as {field: (old, new)}."""
    if name not in PRESETS:
        raise ConfigError([f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}"])
    keep = keep or set()
    changes = {
        key: (getattr(settings, key), value)
        for key, value in PRESETS[name].items()
        if key not in keep and getattr(settings, key) != value
    }
    updated = settings.model_copy(update={k: new for k, (_, new) in changes.items()} | {"preset": name})
    return updated, changes


@dataclass
class Recommendation:
    preset: str
    index_type: str
    db_pool_size: int
    cpu_concurrency: int
    cache_memory_mb: int
    reasons: list[str]


def recommend(chunks: int, cores: int, memory_gb: float) -> Recommendation:
    """Suggest preset, index type and pool sizes for a corpus of ``chunks`` on a machine."""
    reasons = []
    vector_mb = chunks * 384 * 4 / 1e6
    hnsw_mb = vector_mb + chunks * 32 * 2 * 4 / 1e6
    if chunks < 20_000:
        index = "flat"
        reasons.append(f"{chunks} chunks: exact FLAT search stays near 2 ms per query below 20k vectors")
    elif hnsw_mb > memory_gb * 1024 * 0.25:
        index = "ivf"
        reasons.append(
            f"HNSW would need ~{hnsw_mb:.0f} MB, over a quarter of {memory_gb:.0f} GB: IVF adds almost no memory"
        )
    else:
        index = "hnsw"
        reasons.append(f"{chunks} chunks: HNSW keeps queries ~1 ms where FLAT grows linearly (~{vector_mb:.0f} MB)")
    if cores <= 2 or memory_gb < 4:
        preset = "development" if chunks < 5_000 else "production"
    elif cores >= 8 and memory_gb >= 16:
        preset = "high_performance"
    else:
        preset = "production"
    reasons.append(f"{cores} cores, {memory_gb:.0f} GB RAM -> preset {preset}")
    concurrency = max(1, cores)
    pool = min(50, max(2, cores * 2 + 1))
    cache_mb = int(min(2048, max(64, memory_gb * 1024 * 0.05)))
    reasons.append(f"db pool {pool} (2 x cores + 1), CPU concurrency {concurrency} (one per core)")
    reasons.append(f"memory cache {cache_mb} MB (5% of RAM, 64..2048)")
    return Recommendation(preset, index, pool, concurrency, cache_mb, reasons)

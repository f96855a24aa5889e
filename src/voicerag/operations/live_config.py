"""Live configuration: settings that change while serving. A change is validated by the start-up rules (a bad
value changes nothing and says why), applied to the running parts at once without dropping a request, shared
with every replica over Redis (and kept there for replicas that start later), and logged with who made it.
``GET/PATCH /v1/admin/config``, ``voicerag config set KEY=VALUE --url URL`` and SIGHUP (the TOML file read
again) all come here."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from voicerag.config import ConfigError, Settings, _problems, load_settings

if TYPE_CHECKING:
    from voicerag.app import VoiceRAG

log = logging.getLogger(__name__)

REDIS_KEY = "voicerag:config"  # hash: setting -> {"value", "by", "at"}, the fleet's runtime changes

# Settings that may change at run time, and what a change does. Every other setting needs a restart: it sizes
# or opens something that exists once per process (pools, models, stores, indexes' build parameters).
LIVE: dict[str, str] = {
    "log_level": "the level of the voicerag loggers",
    "cache_enabled": "whether lookups use the cache",
    "cache_memory_mb": "the memory tier's budget (a smaller one evicts the least recently used entries)",
    "cache_ttl_embedding_s": "time to live of embeddings written from now on",
    "cache_ttl_search_s": "time to live of search results written from now on",
    "cache_ttl_answer_s": "time to live of answers written from now on",
    "cache_ttl_tts_s": "time to live of synthesised audio written from now on",
    "cache_ttl_stt_s": "time to live of transcripts written from now on",
    "semantic_cache_threshold": "the similarity a paraphrase needs to reuse an answer",
    "rate_limit_per_s": "requests per second per caller (0: off)",
    "rate_limit_burst": "requests a caller may make at once above its rate",
    "search_mode": "the default search mode",
    "top_k": "the default number of sources",
    "candidates": "per-mode candidates before fusion",
    "rrf_k": "the RRF constant",
    "fusion": "how hybrid search fuses (rrf or convex)",
    "fusion_alpha": "convex fusion's dense weight",
    "hnsw_ef_search": "HNSW efSearch (FAISS and pgvector)",
    "ivf_nprobe": "IVF lists probed per query",
    "answer_sentences": "sentences in an extractive answer",
    "answer_min_confidence": "the confidence below which an answer says nothing was found",
    "max_question_chars": "the longest question accepted",
    "max_k": "the most sources a request may ask for",
    "max_speech_chars": "the most text spoken per request",
    "voice_max_spoken_chars": "how much of a voice answer is spoken",
    "voice_first_piece_chars": "the length of the first spoken clause",
    "tts_speed": "the local voice's speed",
    "api_key_cache_s": "how long a verified key is trusted before the store is asked again",
    "redis_max_connections": "the Redis pool's connection limit (checked when a connection is made)",
    "sync_interval_s": "how often generations are compared with the store",
    **{name: "alert threshold or window" for name in Settings.model_fields if name.startswith("alert_")},
}


def is_secret(name: str) -> bool:
    """Settings that hold a credential (``*_api_key``, ``database_url``/``redis_url`` with a password) are shown
    as set or not, never their value; ``api_key_cache_s`` and ``require_api_key`` are not credentials."""
    return name.endswith("_api_key") or name in ("database_url", "redis_url")


@dataclass
class Change:
    """A setting changed at run time: its value, who changed it and when (unix seconds)."""

    value: Any
    by: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "by": self.by, "at": self.at}


class LiveConfig:
    """The running settings of one VoiceRAG, and the changes made to them since start-up."""

    def __init__(self, rag: VoiceRAG):
        self.rag = rag
        self.started_with = rag.settings.model_dump(mode="json")
        self.changes: dict[str, Change] = {}
        self.listeners: list[Callable[[Settings], None]] = []  # e.g. the API's rate limiter

    # ---- reading ----------------------------------------------------------------------------------------

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every setting: its value (secrets masked), whether it can change live, and any runtime change."""
        current = self.rag.settings.model_dump(mode="json")
        out: dict[str, dict[str, Any]] = {}
        for name, value in current.items():
            entry: dict[str, Any] = {"value": _shown(name, value), "live": name in LIVE}
            if name in self.changes:
                change = self.changes[name]
                entry |= {"changed_by": change.by, "changed_at": change.at, "started_with": self.started_with[name]}
            out[name] = entry
        return out

    # ---- changing ---------------------------------------------------------------------------------------

    def validate(self, updates: dict[str, Any]) -> dict[str, Any]:
        """The updates as typed values, checked by the start-up rules with every other setting as it is now;
        ``None`` means back to the start-up value. Raises ConfigError naming each bad one."""
        problems = []
        for name in updates:
            if name not in Settings.model_fields:
                problems.append(f"{name}: no such setting (see 'voicerag config show')")
            elif name not in LIVE:
                problems.append(f"{name}: needs a restart; set it in the TOML file or VOICERAG_{name.upper()}")
        if problems:
            raise ConfigError(problems)
        wanted = {name: self.started_with[name] if value is None else value for name, value in updates.items()}
        try:
            checked = Settings.model_validate(self.rag.settings.model_dump() | wanted)
        except ValidationError as exc:
            raise ConfigError(_problems(exc)) from None
        return {name: getattr(checked, name) for name in wanted}

    def apply(self, updates: dict[str, Any], by: str, at: float | None = None) -> dict[str, list[Any]]:
        """Validate and apply ``updates`` in this process (all or nothing); returns {setting: [old, new]} for
        what changed. Synchronous: no request runs between the first and the last setting changing."""
        values = self.validate(updates)
        settings = self.rag.settings
        changed = {
            name: [getattr(settings, name), new] for name, new in values.items() if getattr(settings, name) != new
        }
        when = time.time() if at is None else at
        done: list[str] = []
        try:
            for name, (_, new) in changed.items():
                setattr(settings, name, new)
                done.append(name)
                self._apply_to_parts(name, new)
        except (ValueError, TypeError, OverflowError, MemoryError) as exc:  # all or nothing: put back what was set
            for name in reversed(done):
                old = changed[name][0]
                setattr(settings, name, old)
                with contextlib.suppress(Exception):
                    self._apply_to_parts(name, old)
            raise ConfigError([f"{done[-1]}: could not be applied ({exc}); nothing was changed"]) from None
        for name, (_, new) in changed.items():
            if _jsonable(new) == self.started_with.get(name):
                self.changes.pop(name, None)
            else:
                self.changes[name] = Change(_jsonable(new), by, when)
        for listener in self.listeners:
            listener(settings)
        if changed:
            log.warning(
                "configuration changed by %s: %s",
                by,
                ", ".join(
                    f"{name} {_shown(name, old)!r} -> {_shown(name, new)!r}" for name, (old, new) in changed.items()
                ),
            )
        return {name: [_jsonable(old), _jsonable(new)] for name, (old, new) in changed.items()}

    async def change(self, updates: dict[str, Any], by: str) -> dict[str, list[Any]]:
        """Apply here, then on every replica: kept in Redis (for replicas that start later) and announced."""
        changed = self.apply(updates, by)
        redis = self.rag.pools.redis
        if changed and redis is not None:
            values = {name: self.changes[name].to_json() if name in self.changes else None for name in changed}
            try:
                kept = {name: json.dumps(entry) for name, entry in values.items() if entry is not None}
                dropped = [name for name, entry in values.items() if entry is None]
                if kept:
                    await redis.hset(REDIS_KEY, mapping=kept)
                if dropped:
                    await redis.hdel(REDIS_KEY, *dropped)
            except Exception as exc:
                log.warning("the configuration change is not kept in Redis for replicas that start later: %s", exc)
            if self.rag.bus is not None:
                await self.rag.bus.publish_config({name: [changed[name][1], by] for name in changed})
        return changed

    def on_remote(self, message: dict[str, Any]) -> None:
        """Another replica changed settings: apply the same values here (checked again, by our rules)."""
        for name, (value, by) in message.get("settings", {}).items():
            try:
                self.apply({name: value}, by=f"{by} (via another replica)")
            except ConfigError as exc:
                log.error("a configuration change from another replica was refused here: %s", exc)

    async def load_shared(self) -> None:
        """At start-up: take the fleet's runtime changes kept in Redis, so a new replica matches the others."""
        redis = self.rag.pools.redis
        if redis is None:
            return
        try:
            kept = await redis.hgetall(REDIS_KEY)
        except Exception as exc:
            log.warning("could not read the fleet's runtime configuration from Redis: %s", exc)
            return
        for raw_name, raw in kept.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            entry = json.loads(raw)
            try:
                self.apply({name: entry["value"]}, by=entry["by"], at=entry["at"])
            except ConfigError as exc:
                log.error("the fleet's runtime setting %s is refused here: %s", name, exc)

    async def reload_file(self) -> dict[str, list[Any]]:
        """SIGHUP: read the environment and TOML file again; apply what changed and can change live, and log
        what would need a restart."""
        try:
            fresh = load_settings().model_dump(mode="json")
        except ConfigError as exc:
            log.error("SIGHUP: the configuration was not reloaded: %s", exc)
            return {}
        differ = {name: value for name, value in fresh.items() if value != self.started_with.get(name)}
        needs_restart = sorted(name for name in differ if name not in LIVE)
        if needs_restart:
            log.warning("SIGHUP: changed in the file but needs a restart: %s", ", ".join(needs_restart))
        live = {name: value for name, value in differ.items() if name in LIVE}
        try:
            changed = await self.change(live, by="SIGHUP (configuration file)")
        except ConfigError as exc:
            log.error("SIGHUP: the configuration was not reloaded: %s", exc)
            return {}
        self.started_with |= live
        for name in live:
            self.changes.pop(name, None)
        return changed

    def _apply_to_parts(self, name: str, value: Any) -> None:
        """Push a new value into the part that copied it at start-up (the rest read Settings on each use)."""
        rag = self.rag
        if name == "log_level":
            logging.getLogger("voicerag").setLevel(value)
        elif name == "cache_enabled":
            rag.cache.enabled = value
        elif name == "cache_memory_mb":
            rag.cache.resize_memory(int(value * 1024 * 1024))
        elif name.startswith("cache_ttl_"):
            rag.cache.set_ttl(name.removeprefix("cache_ttl_").removesuffix("_s"), value)
        elif name == "semantic_cache_threshold" and rag.pipeline.semantic is not None:
            rag.pipeline.semantic.threshold = value
        elif name in ("hnsw_ef_search", "ivf_nprobe"):
            params = getattr(rag.retriever.backend, "params", None)
            if params is not None:
                setattr(params, name, value)
        elif name == "answer_sentences":  # swapped whole: a request in flight keeps the one it took
            rag.pipeline.extractive = rag.pipeline.extractive.with_options(sentences=value)
        elif name == "answer_min_confidence":
            rag.pipeline.extractive = rag.pipeline.extractive.with_options(min_confidence=value)
        elif name == "api_key_cache_s":
            rag.keys.cache_s = value
        elif name == "redis_max_connections" and rag.pools.redis is not None:
            rag.pools.redis.connection_pool.max_connections = value


def _shown(name: str, value: Any) -> Any:
    if is_secret(name):
        return "(set)" if value else None
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else str(value)

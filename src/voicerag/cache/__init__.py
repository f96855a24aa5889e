"""Tiered caching: L1 memory, L2 Redis, L3 SQL, disk files for TTS audio; policies per kind of value;
invalidation across replicas."""

from __future__ import annotations

from voicerag.cache.tiered import POLICY_NAMES, Policy, TieredCache
from voicerag.cache.tiers import CacheTier, FileTier, MemoryTier, RedisTier, SQLTier
from voicerag.config import Settings
from voicerag.pools import Pools

MEMORY_SHARES = {"embedding": 0.25, "search": 0.15, "answer": 0.15, "tts": 0.30, "stt": 0.10, "clip": 0.05}

# Which tiers earn their place, per policy (measured by ``voicerag bench``: a miss must cost at most 5% more
# than no cache). A query embedding or a search result costs a few milliseconds to compute, about what a SQL
# read costs, so those stay in memory only. An answer is shared over Redis (one round trip, written behind).
# Transcripts cost seconds: every tier, SQL included, so they survive restarts. Audio lives in files.
TIERS_BY_POLICY: dict[str, tuple[str, ...]] = {
    "embedding": ("memory",),
    "search": ("memory",),
    "answer": ("memory", "redis"),
    "stt": ("memory", "redis", "sql"),
    "tts": ("memory", "disk"),
    "clip": ("memory", "redis"),  # answer audio behind an opaque, short-lived URL (any replica can serve it)
}
CLIP_TTL_S = 600


def policies_from(settings: Settings) -> dict[str, Policy]:
    ttl = {
        "embedding": settings.cache_ttl_embedding_s,
        "search": settings.cache_ttl_search_s,
        "answer": settings.cache_ttl_answer_s,
        "tts": settings.cache_ttl_tts_s,
        "stt": settings.cache_ttl_stt_s,
        "clip": CLIP_TTL_S,
    }
    tiers = TIERS_BY_POLICY
    return {name: Policy(name, ttl[name], MEMORY_SHARES[name], tiers[name]) for name in POLICY_NAMES}


def build_cache(settings: Settings, pools: Pools) -> TieredCache:
    """The cache with the tiers that Settings switch on (Redis only when ``redis_url`` is set)."""
    policies = policies_from(settings)
    budget = int(settings.cache_memory_mb * 1024 * 1024)
    tiers: list[CacheTier] = []
    if budget > 0:
        tiers.append(MemoryTier({name: int(budget * p.memory_share) for name, p in policies.items()}))
    if pools.redis is not None and settings.cache_redis:
        tiers.append(RedisTier(pools.redis))
    if settings.cache_sql:
        tiers.append(SQLTier(pools.engine))
    if settings.tts_cache_max_mb > 0:
        tiers.append(FileTier(settings.resolved_tts_cache_dir, int(settings.tts_cache_max_mb * 1024 * 1024)))
    return TieredCache(tiers, policies, enabled=settings.cache_enabled, write_behind=settings.cache_write_behind)


__all__ = ["TieredCache", "Policy", "build_cache", "policies_from", "MemoryTier", "RedisTier", "SQLTier", "FileTier"]

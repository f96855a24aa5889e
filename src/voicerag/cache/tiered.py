"""TieredCache: read through L1 -> L2 -> L3, promote hits, write misses everywhere, single-flight, stats."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import msgpack

from voicerag.cache.tiers import CacheTier, FileTier, MemoryTier

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_VERSION = "vr1"  # bump when a value format changes, so old entries are never read wrongly

POLICY_NAMES = ("embedding", "search", "answer", "tts", "stt", "clip")


@dataclass(frozen=True)
class Policy:
    """How one kind of value is cached: time to live, share of the memory budget, and which tiers hold it."""

    name: str
    ttl_s: float
    memory_share: float
    tiers: tuple[str, ...] = ("memory", "redis", "sql")


@dataclass
class TierStats:
    hits: int = 0
    misses: int = 0
    sets: int = 0
    errors: int = 0
    seconds: float = 0.0
    calls: int = 0

    def to_json(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / total, 4) if total else 0.0,
            "sets": self.sets,
            "errors": self.errors,
            "avg_ms": round(1000 * self.seconds / self.calls, 4) if self.calls else 0.0,
        }


@dataclass
class PolicyStats:
    hits: int = 0
    misses: int = 0
    computes: int = 0
    coalesced: int = 0
    corrupt: int = 0
    tiers: dict[str, TierStats] = field(default_factory=dict)


class Codec:
    """msgpack for structured values; bytes stay bytes."""

    @staticmethod
    def encode(value: Any) -> bytes:
        return msgpack.packb(value, use_bin_type=True)

    @staticmethod
    def decode(data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)


def make_key(policy: str, parts: Any) -> str:
    """``vr1:{policy}:{sha256 of the msgpack of parts}``: short, fixed-length, safe in every tier."""
    digest = hashlib.sha256(msgpack.packb(parts, use_bin_type=True)).hexdigest()
    return f"{KEY_VERSION}:{policy}:{digest}"


class TieredCache:
    """The cache every expensive step goes through. Tiers are tried in order; a hit is copied to the tiers
    above it; a miss is computed once per key per process (single-flight) and written to every tier of the
    policy. Undecodable entries count as misses and are removed."""

    def __init__(
        self, tiers: list[CacheTier], policies: dict[str, Policy], enabled: bool = True, write_behind: bool = False
    ):
        self.tiers = tiers
        self.policies = policies
        self.enabled = enabled
        self.write_behind = write_behind
        self._pending: set[asyncio.Future[Any]] = set()
        self.stats: dict[str, PolicyStats] = {
            name: PolicyStats(tiers={t.name: TierStats() for t in tiers}) for name in policies
        }
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    def _tiers_for(self, policy: Policy) -> list[CacheTier]:
        return [t for t in self.tiers if t.name in policy.tiers]

    async def get_or_compute(
        self,
        policy_name: str,
        key_parts: Any,
        compute: Callable[[], Awaitable[T]],
        *,
        encode: Callable[[T], bytes] = Codec.encode,
        decode: Callable[[bytes], T] = Codec.decode,
        tags: tuple[str, ...] = (),
        cacheable: Callable[[T], bool] | None = None,
    ) -> tuple[T, bool]:
        """The cached value for ``key_parts`` or the computed one; returns (value, was_hit). Concurrent calls for
        one key share one read and compute; when the caller doing it is cancelled (its client went away), a
        waiting caller does it instead of failing with that caller's cancellation."""
        policy = self.policies[policy_name]
        if not self.enabled or not self._tiers_for(policy):
            return await compute(), False
        key = make_key(policy_name, key_parts)
        while (pending := self._inflight.get(key)) is not None:  # being read or computed: wait for that one
            self.stats[policy_name].coalesced += 1
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.done() or (task is not None and task.cancelling()):
                    raise  # this caller itself was cancelled
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            found = await self._read(policy, key, decode, tags)
            if found is not None:
                future.set_result((found[0], True))
                return found[0], True
            value = await compute()
            self.stats[policy_name].computes += 1
            if cacheable is None or cacheable(value):
                await self._write(policy, key, encode(value), tags)
            future.set_result((value, False))
            return value, False
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._inflight.pop(key, None)

    async def get(
        self, policy_name: str, key_parts: Any, decode: Callable[[bytes], T] = Codec.decode, *, always: bool = False
    ) -> T | None:
        """Read only; None on a miss. ``always``: also when caching is off (the entry is the only copy)."""
        policy = self.policies[policy_name]
        if not self.enabled and not always:
            return None
        found = await self._read(policy, make_key(policy_name, key_parts), decode, ())
        return None if found is None else found[0]

    async def set(
        self,
        policy_name: str,
        key_parts: Any,
        value: T,
        encode: Callable[[T], bytes] = Codec.encode,
        tags: tuple[str, ...] = (),
        *,
        always: bool = False,
    ) -> None:
        """Write to the policy's tiers. ``always``: also when caching is off (the entry is the only copy)."""
        if self.enabled or always:
            policy = self.policies[policy_name]
            await self._write(policy, make_key(policy_name, key_parts), encode(value), tags)

    async def _read(
        self, policy: Policy, key: str, decode: Callable[[bytes], Any], tags: tuple[str, ...]
    ) -> tuple[Any] | None:
        stats = self.stats[policy.name]
        tiers = self._tiers_for(policy)
        for level, tier in enumerate(tiers):
            started = time.perf_counter()
            raw = await tier.get(key)
            tier_stats = stats.tiers[tier.name]
            tier_stats.seconds += time.perf_counter() - started
            tier_stats.calls += 1
            if raw is None:
                tier_stats.misses += 1
                continue
            try:
                value = decode(raw)
            except Exception:
                stats.corrupt += 1
                tier_stats.errors += 1
                log.warning("dropping undecodable %s cache entry %s from %s", policy.name, key, tier.name)
                await asyncio.gather(*(t.delete([key]) for t in tiers))
                break
            tier_stats.hits += 1
            stats.hits += 1
            for upper in tiers[:level]:  # promote
                await upper.set(key, raw, policy.ttl_s, policy.name, tags)
            return (value,)
        stats.misses += 1
        return None

    async def _write(self, policy: Policy, key: str, raw: bytes, tags: tuple[str, ...]) -> None:
        """Write to every tier of the policy. With write-behind, only the memory tier is written before the
        request goes on; the shared tiers are written by a background task (``flush()`` waits for them)."""
        tiers = self._tiers_for(policy)
        for tier in tiers:
            self.stats[policy.name].tiers[tier.name].sets += 1
        now = [t for t in tiers if not self.write_behind or isinstance(t, MemoryTier)]
        later = [t for t in tiers if t not in now]
        await asyncio.gather(*(t.set(key, raw, policy.ttl_s, policy.name, tags) for t in now))
        if later:
            task = asyncio.ensure_future(
                asyncio.gather(*(t.set(key, raw, policy.ttl_s, policy.name, tags) for t in later))
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait until every write-behind write has landed."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def invalidate(
        self, policy: str | None = None, tag: str | None = None, pattern: str | None = None
    ) -> dict[str, int]:
        """Remove entries by policy, by tag (e.g. ``collection:NAME``), by key pattern, or all of them."""
        if policy is not None and policy not in self.policies:
            raise KeyError(policy)
        await self.flush()  # a pending write must not land after the entries it belongs with were removed
        counts = await asyncio.gather(*(t.clear(policy=policy, tag=tag, pattern=pattern) for t in self.tiers))
        return {t.name: n for t, n in zip(self.tiers, counts, strict=True)}

    async def stored(self) -> dict[str, dict[str, int]]:
        """Entries held now, per policy and tier (the shared tiers' contents, whichever process wrote them)."""
        counts = await asyncio.gather(*(t.stored() for t in self.tiers))
        return {
            name: {t.name: n.get(name, 0) for t, n in zip(self.tiers, counts, strict=True) if t.name in policy.tiers}
            for name, policy in self.policies.items()
        }

    def set_ttl(self, policy: str, ttl_s: float) -> None:
        """A new time to live for entries written from now on (live configuration)."""
        self.policies[policy] = replace(self.policies[policy], ttl_s=ttl_s)

    def resize_memory(self, budget_bytes: int) -> None:
        """A new memory budget, shared between policies as before; entries beyond a smaller one are evicted."""
        memory = next((t for t in self.tiers if isinstance(t, MemoryTier)), None)
        if memory is not None:
            memory.resize({name: int(budget_bytes * p.memory_share) for name, p in self.policies.items()})

    async def purge_expired(self) -> dict[str, int]:
        """Remove expired entries from every tier now; counts per tier."""
        counts = await asyncio.gather(*(t.purge_expired() for t in self.tiers))
        return {t.name: n for t, n in zip(self.tiers, counts, strict=True)}

    def stats_json(self) -> dict[str, Any]:
        """Per policy: hits, misses, hit rate, and per-tier figures (bytes and evictions for memory)."""
        memory = next((t for t in self.tiers if isinstance(t, MemoryTier)), None)
        disk = next((t for t in self.tiers if isinstance(t, FileTier)), None)
        out: dict[str, Any] = {}
        for name, s in self.stats.items():
            total = s.hits + s.misses
            tiers = {tier: ts.to_json() for tier, ts in s.tiers.items() if tier in self.policies[name].tiers}
            if memory is not None and "memory" in tiers:
                tiers["memory"] |= {
                    "bytes": memory.bytes_used(name),
                    "entries": memory.entries(name),
                    "evictions": memory.evictions.get(name, 0),
                    "budget_bytes": memory.budgets.get(name, 0),
                }
            if disk is not None and "disk" in self.policies[name].tiers:
                tiers["disk"] |= {
                    "bytes": disk.bytes_used(),
                    "evictions": disk.evictions,
                    "budget_bytes": disk.max_bytes,
                }
            out[name] = {
                "hits": s.hits,
                "misses": s.misses,
                "hit_rate": round(s.hits / total, 4) if total else 0.0,
                "computes": s.computes,
                "coalesced": s.coalesced,
                "corrupt": s.corrupt,
                "ttl_s": self.policies[name].ttl_s,
                "tiers": tiers,
            }
        return out

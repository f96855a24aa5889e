"""Cache tiers: L1 in-process (TTL + LRU by bytes), L2 Redis, L3 SQL, and files on disk for audio. All store
bytes under string keys."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Column, Float, Index, LargeBinary, String, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voicerag.clock import SYSTEM_CLOCK, Clock
from voicerag.documents import database
from voicerag.documents.tables import metadata

log = logging.getLogger(__name__)

# The SQL tier's table, in the store's schema (created with the store's tables).
cache_entries = Table(
    "vr_cache",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("policy", String(32), nullable=False),
    Column("tags", String(512), nullable=False, default=""),
    Column("value", LargeBinary, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("vr_cache_policy", "policy"),
    Index("vr_cache_expiry", "expires_at"),
)


class CacheTier(Protocol):
    """One level of the cache. Failures never raise to the caller: a failed get is a miss."""

    name: str

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl_s: float, policy: str, tags: tuple[str, ...]) -> None: ...
    async def delete(self, keys: list[str]) -> None: ...
    async def clear(self, policy: str | None = None, tag: str | None = None, pattern: str | None = None) -> int: ...
    async def purge_expired(self) -> int: ...
    async def stored(self) -> dict[str, int]: ...


ENTRY_OVERHEAD = 280  # bytes an entry costs beyond its key and value (objects, LRU node), measured with tracemalloc


def _size(key: str, value: bytes) -> int:
    """What an entry costs the memory budget: its key, its value and the bookkeeping around them."""
    return len(value) + len(key) + ENTRY_OVERHEAD


@dataclass
class _Entry:
    value: bytes
    expires_at: float
    policy: str
    tags: tuple[str, ...]


class MemoryTier:
    """In-process LRU with TTL, bounded by bytes per policy (each policy gets its share of the budget)."""

    name = "memory"

    def __init__(self, budgets: dict[str, int], clock: Clock = SYSTEM_CLOCK):
        self.budgets = budgets
        self.clock = clock
        self._lru: dict[str, OrderedDict[str, _Entry]] = {p: OrderedDict() for p in budgets}
        self._bytes: dict[str, int] = dict.fromkeys(budgets, 0)
        self.evictions: dict[str, int] = dict.fromkeys(budgets, 0)
        self._lock = threading.Lock()

    def bytes_used(self, policy: str) -> int:
        return self._bytes.get(policy, 0)

    def entries(self, policy: str) -> int:
        return len(self._lru.get(policy, ()))

    def _policy_of(self, key: str) -> str | None:
        parts = key.split(":", 2)
        return parts[1] if len(parts) == 3 and parts[1] in self._lru else None

    async def get(self, key: str) -> bytes | None:
        policy = self._policy_of(key)
        if policy is None:
            return None
        with self._lock:
            lru = self._lru[policy]
            entry = lru.get(key)
            if entry is None:
                return None
            if entry.expires_at <= self.clock.time():
                self._drop(policy, key)
                return None
            lru.move_to_end(key)
            return entry.value

    def _drop(self, policy: str, key: str) -> None:
        entry = self._lru[policy].pop(key, None)
        if entry is not None:
            self._bytes[policy] -= _size(key, entry.value)

    async def set(self, key: str, value: bytes, ttl_s: float, policy: str, tags: tuple[str, ...]) -> None:
        budget = self.budgets.get(policy, 0)
        size = _size(key, value)
        if size > budget:
            return
        with self._lock:
            lru = self._lru[policy]
            self._drop(policy, key)
            lru[key] = _Entry(value, self.clock.time() + ttl_s, policy, tags)
            self._bytes[policy] += size
            while self._bytes[policy] > budget:
                old_key, _ = next(iter(lru.items()))
                self._drop(policy, old_key)
                self.evictions[policy] += 1

    def resize(self, budgets: dict[str, int]) -> None:
        """New budgets per policy; the least recently used entries go until each policy fits."""
        with self._lock:
            self.budgets = budgets
            for policy, lru in self._lru.items():
                while self._bytes[policy] > budgets.get(policy, 0) and lru:
                    self._drop(policy, next(iter(lru)))
                    self.evictions[policy] += 1

    async def stored(self) -> dict[str, int]:
        """Entries held per policy."""
        return {policy: len(lru) for policy, lru in self._lru.items()}

    async def delete(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                policy = self._policy_of(key)
                if policy:
                    self._drop(policy, key)

    async def purge_expired(self) -> int:
        """Drop expired entries now (they would otherwise go when read or pushed out)."""
        now, removed = self.clock.time(), 0
        with self._lock:
            for name, lru in self._lru.items():
                for key in [k for k, e in lru.items() if e.expires_at <= now]:
                    self._drop(name, key)
                    removed += 1
        return removed

    async def clear(self, policy: str | None = None, tag: str | None = None, pattern: str | None = None) -> int:
        removed = 0
        with self._lock:
            for name, lru in self._lru.items():
                if policy and name != policy:
                    continue
                doomed = [
                    k
                    for k, e in lru.items()
                    if (tag is None or tag in e.tags) and (pattern is None or fnmatch.fnmatchcase(k, pattern))
                ]
                for k in doomed:
                    self._drop(name, k)
                removed += len(doomed)
        return removed


class RedisTier:
    """Redis (redis-py asyncio + hiredis, pooled). Short timeouts; when Redis is down, the tier steps aside for
    ``retry_after_s`` after each failure, logs one warning per outage, and resumes by itself."""

    name = "redis"

    def __init__(self, redis: Any, retry_after_s: float = 1.0, clock: Clock = SYSTEM_CLOCK):
        self.redis = redis
        self.clock = clock
        self.retry_after_s = retry_after_s
        self.down_since: float | None = None
        self._skip_until = 0.0
        self.errors = 0

    @property
    def available(self) -> bool:
        return self.clock.monotonic() >= self._skip_until

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self._skip_until = self.clock.monotonic() + self.retry_after_s
        if self.down_since is None:
            self.down_since = self.clock.time()
            log.warning("Redis cache tier unavailable (%s); serving from the other tiers", exc or type(exc).__name__)

    def _ok(self) -> None:
        if self.down_since is not None:
            log.warning("Redis cache tier back after %.1f s", self.clock.time() - self.down_since)
            self.down_since = None

    async def get(self, key: str) -> bytes | None:
        if not self.available:
            return None
        try:
            value = await self.redis.get(key)
        except Exception as exc:
            self._failed(exc)
            return None
        self._ok()
        return value

    async def set(self, key: str, value: bytes, ttl_s: float, policy: str, tags: tuple[str, ...]) -> None:
        if not self.available:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(key, value, px=int(ttl_s * 1000))
                for tag in tags:
                    pipe.sadd(f"vr1:tag:{tag}", key)
                    pipe.expire(f"vr1:tag:{tag}", int(ttl_s) + 60)
                await pipe.execute()
        except Exception as exc:
            self._failed(exc)
            return
        self._ok()

    async def delete(self, keys: list[str]) -> None:
        if keys and self.available:
            try:
                await self.redis.delete(*keys)
            except Exception as exc:
                self._failed(exc)

    async def clear(self, policy: str | None = None, tag: str | None = None, pattern: str | None = None) -> int:
        try:
            if tag is not None:
                keys = [k.decode() if isinstance(k, bytes) else k for k in await self.redis.smembers(f"vr1:tag:{tag}")]
                keys = [k for k in keys if (policy is None or f":{policy}:" in k)]
                keys = [k for k in keys if pattern is None or fnmatch.fnmatchcase(k, pattern)]
                if keys:
                    await self.redis.delete(*keys)
                return len(keys)
            match = pattern or (f"vr1:{policy}:*" if policy else "vr1:*")
            removed = 0
            batch: list[Any] = []
            async for key in self.redis.scan_iter(match=match, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += await self.redis.delete(*batch)
                    batch = []
            if batch:
                removed += await self.redis.delete(*batch)
            return removed
        except Exception as exc:
            self._failed(exc)
            return 0

    async def purge_expired(self) -> int:
        """Redis expires entries itself."""
        return 0

    async def stored(self) -> dict[str, int]:
        """Entries held per policy (one SCAN over the cache's keys)."""
        counts: dict[str, int] = {}
        try:
            async for key in self.redis.scan_iter(match="vr1:*", count=1000):
                policy = (key.decode() if isinstance(key, bytes) else key).split(":")[1]
                if policy != "tag":
                    counts[policy] = counts.get(policy, 0) + 1
        except Exception as exc:
            self._failed(exc)
        return counts


class SQLTier:
    """A table in the documents database, with expiry; makes a repeated question in a new process a hit."""

    name = "sql"

    def __init__(self, engine: AsyncEngine, clock: Clock = SYSTEM_CLOCK):
        self.engine = engine
        self.clock = clock
        self._sets = 0
        self.errors = 0

    async def get(self, key: str) -> bytes | None:
        try:
            async with self.engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(cache_entries.c.value, cache_entries.c.expires_at).where(cache_entries.c.key == key)
                    )
                ).first()
        except Exception as exc:
            self.errors += 1
            log.warning("SQL cache tier read failed: %s", exc)
            return None
        if row is None:
            return None
        if row[1] <= self.clock.time():
            await self.delete([key])
            return None
        return bytes(row[0])

    async def set(self, key: str, value: bytes, ttl_s: float, policy: str, tags: tuple[str, ...]) -> None:
        values = {
            "key": key,
            "policy": policy,
            "tags": "|" + "|".join(tags) + "|" if tags else "",
            "value": value,
            "expires_at": self.clock.time() + ttl_s,
        }
        if self.engine.dialect.name == "postgresql":  # the dialect a store does not use is never loaded
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect
        stmt = dialect.insert(cache_entries).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cache_entries.c.key],
            set_={k: stmt.excluded[k] for k in ("policy", "tags", "value", "expires_at")},
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(stmt)
                self._sets += 1
                if self._sets % 500 == 0:
                    await conn.execute(delete(cache_entries).where(cache_entries.c.expires_at <= self.clock.time()))
        except Exception as exc:
            self.errors += 1
            log.warning("SQL cache tier write failed: %s", exc)

    async def stored(self) -> dict[str, int]:
        """Live entries per policy."""
        stmt = (
            select(cache_entries.c.policy, func.count())
            .where(cache_entries.c.expires_at > self.clock.time())
            .group_by(cache_entries.c.policy)
        )
        async with self.engine.connect() as conn:
            return {policy: int(count) for policy, count in (await conn.execute(stmt)).all()}

    async def purge_expired(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(cache_entries).where(cache_entries.c.expires_at <= self.clock.time()))
        return int(result.rowcount or 0)

    async def delete(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            async with self.engine.begin() as conn:
                await conn.execute(delete(cache_entries).where(cache_entries.c.key.in_(keys)))
        except Exception as exc:
            self.errors += 1
            log.warning("SQL cache tier delete failed: %s", exc)

    async def clear(self, policy: str | None = None, tag: str | None = None, pattern: str | None = None) -> int:
        stmt = delete(cache_entries)
        if policy:
            stmt = stmt.where(cache_entries.c.policy == policy)
        if tag:
            stmt = stmt.where(cache_entries.c.tags.contains(f"|{tag}|", autoescape=True))
        if pattern:
            like = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(cache_entries.c.key.like(like.replace("*", "%").replace("?", "_"), escape="\\"))
        return await database.execute(self.engine, stmt, what="clearing cache entries")


class FileTier:
    """Values as files on disk, content-addressed by key (``DIR/POLICY/HASH``), bounded in bytes, least recently
    used evicted first (a read refreshes the file's mtime). Survives restarts; holds large values such as audio."""

    name = "disk"
    _HEADER = 8  # expiry time, float64 seconds since the epoch

    def __init__(self, root: Path, max_bytes: int, clock: Clock = SYSTEM_CLOCK):
        self.root = root
        self.clock = clock
        self.max_bytes = max_bytes
        self.evictions = 0
        self._lock = threading.Lock()
        self._sizes: dict[Path, int] = {}
        root.mkdir(parents=True, exist_ok=True)
        for path in root.glob("*/*"):
            if path.suffix == ".tmp":
                path.unlink(missing_ok=True)  # a write cut short by a crash
            elif path.is_file():
                self._sizes[path] = path.stat().st_size

    def bytes_used(self) -> int:
        return sum(self._sizes.values())

    async def stored(self) -> dict[str, int]:
        """Files held per policy."""
        with self._lock:
            paths = list(self._sizes)
        counts: dict[str, int] = {}
        for path in paths:
            counts[path.parent.name] = counts.get(path.parent.name, 0) + 1
        return counts

    def _path(self, key: str) -> Path | None:
        parts = key.split(":", 2)
        if len(parts) != 3 or not parts[2].isalnum():
            return None
        return self.root / parts[1] / parts[2]

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        if path is None or path not in self._sizes:
            return None
        return await asyncio.to_thread(self._read, path)

    def _read(self, path: Path) -> bytes | None:
        try:
            data = path.read_bytes()
            expires_at = struct.unpack("<d", data[: self._HEADER])[0]
        except (OSError, struct.error):
            self._forget(path)
            return None
        if expires_at <= self.clock.time():
            self._forget(path)
            return None
        os.utime(path)
        return data[self._HEADER :]

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._sizes.pop(path, None)
        path.unlink(missing_ok=True)

    async def set(self, key: str, value: bytes, ttl_s: float, policy: str, tags: tuple[str, ...]) -> None:
        path = self._path(key)
        if path is None or len(value) + self._HEADER > self.max_bytes:
            return
        try:
            await asyncio.to_thread(self._write, path, struct.pack("<d", self.clock.time() + ttl_s) + value)
        except OSError as exc:
            log.warning("disk cache write failed: %s", exc)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers see the whole file or none
        with self._lock:
            self._sizes[path] = len(data)
            over = sum(self._sizes.values()) - self.max_bytes
        if over > 0:
            self._evict(over)

    def _evict(self, over: int) -> None:
        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0

        for path in sorted(list(self._sizes), key=mtime):
            if over <= 0:
                break
            over -= self._sizes.get(path, 0)
            self._forget(path)
            self.evictions += 1

    async def purge_expired(self) -> int:
        """Remove expired files, and the least recently used beyond the byte budget."""
        removed = 0
        for path in list(self._sizes):
            if self._read(path) is None:  # expired or unreadable: _read forgets it
                removed += 1
        over = sum(self._sizes.values()) - self.max_bytes
        if over > 0:
            before = self.evictions
            self._evict(over)
            removed += self.evictions - before
        return removed

    async def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            if path is not None:
                self._forget(path)

    async def clear(self, policy: str | None = None, tag: str | None = None, pattern: str | None = None) -> int:
        if tag is not None:
            return 0  # disk entries carry no tags (audio depends only on text and voice)
        doomed = [
            p
            for p in list(self._sizes)
            if (policy is None or p.parent.name == policy)
            and (pattern is None or fnmatch.fnmatchcase(f"vr1:{p.parent.name}:{p.name}", pattern))
        ]
        for path in doomed:
            self._forget(path)
        return len(doomed)

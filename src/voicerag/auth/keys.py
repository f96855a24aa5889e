"""API keys: created once (the key is shown once), stored as SHA-256 hashes, verified from memory.

Keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed). The key table is
held in memory and reloaded every ``cache_s`` in the background: a revocation takes effect at once on the
process that revoked, and within ``cache_s`` on the others."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicerag.auth.scopes import Principal, parse_scopes
from voicerag.documents import database
from voicerag.documents.tables import metadata
from voicerag.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

api_keys = Table(
    "vr_api_keys",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
)

PREFIX = "vr_"


@dataclass(frozen=True)
class KeyRecord:
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": self.scopes,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked": self.revoked,
            "state": self.state(),
        }

    def state(self, now: datetime | None = None) -> str:
        """revoked, expired or active."""
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True)
class _Entry:
    principal: Principal | None  # None: revoked
    expires_at: datetime | None

    def usable(self, now: datetime) -> Principal | None:
        return self.principal if self.expires_at is None or self.expires_at > now else None


class ApiKeys:
    """Create, list, revoke and verify keys in the store. Verification reads an in-memory snapshot of the key
    table, reloaded every ``cache_s`` by ``run_refresh`` (the server runs it) so no request waits on SQL; a key
    the snapshot does not know is looked up once (a key just made elsewhere works at once). Without the refresh
    task, the request that finds the snapshot older than ``cache_s`` reloads it. ``cache_s`` 0: every check
    asks the store."""

    def __init__(self, engine: AsyncEngine, cache_s: float = 10.0):
        self.engine = engine
        self.cache_s = cache_s
        self._keys: dict[str, _Entry] = {}
        self._loaded_at: float | None = None
        self._loading: asyncio.Task[None] | None = None
        self._unknown: dict[str, float] = {}  # digests looked up and not found, and when
        self.loads = 0

    async def create(self, name: str, scopes: list[str], expires_days: float | None = None) -> tuple[str, KeyRecord]:
        """A new key: returns (the key, shown only now; its record)."""
        if not name or len(name) > 128 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InvalidInput("a key name is 1-128 letters, digits, '-', '_' or '.'")
        checked = sorted(parse_scopes(scopes))
        key = PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(days=expires_days) if expires_days else None
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(api_keys).values(
                        name=name,
                        key_hash=_hash(key),
                        scopes=checked,
                        created_at=now,
                        expires_at=expires,
                        revoked=False,
                    )
                )
        except IntegrityError:
            raise InvalidInput(f"a key named {name!r} exists already; revoke it or choose another name") from None
        self._loaded_at = None  # seen by this process at once
        return key, KeyRecord(name, checked, now, expires, False)

    async def list(self) -> list[KeyRecord]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(api_keys).order_by(api_keys.c.name))).mappings().all()
        return [
            KeyRecord(r["name"], list(r["scopes"]), _aware(r["created_at"]), _aware(r["expires_at"]), r["revoked"])
            for r in rows
        ]

    async def revoke(self, name: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(update(api_keys).where(api_keys.c.name == name).values(revoked=True))
        if not result.rowcount:
            raise NotFound(f"no key is named {name!r}; 'voicerag keys list' shows the keys")
        self._loaded_at = None  # this process sees the revocation at once

    async def any_active(self) -> bool:
        """Whether any usable key exists (then every request needs one)."""
        await self._current()
        now = datetime.now(UTC)
        return any(entry.usable(now) is not None for entry in self._keys.values())

    async def verify(self, key: str) -> Principal | None:
        """The key's principal, or None when it is unknown, revoked or expired."""
        digest = _hash(key)
        await self._current()
        entry = self._keys.get(digest)
        if entry is None:
            entry = await self._lookup(digest)
        return None if entry is None else entry.usable(datetime.now(UTC))

    async def run_refresh(self) -> None:
        """Reload the snapshot every ``cache_s`` (half of it, so requests find it fresh); runs until cancelled."""
        while self.cache_s > 0:
            try:
                await self._reload()
            except Exception as exc:  # the store is away: requests reload (and fail) on their own
                log.warning("could not reload the API keys: %s", exc)
            await asyncio.sleep(self.cache_s / 2)

    async def _current(self) -> None:
        fresh = self._loaded_at is not None and time.monotonic() - self._loaded_at < self.cache_s
        if not fresh:
            await self._reload()

    async def _reload(self) -> None:
        """One load at a time; callers that arrive meanwhile wait for it."""
        if self._loading is None or self._loading.done():
            self._loading = asyncio.create_task(self._load())
        await asyncio.shield(self._loading)

    async def _load(self) -> None:
        started = time.monotonic()
        rows = await database.fetch(self.engine, select(api_keys), what="loading keys", mappings=True)
        self._keys = {r["key_hash"]: _entry(r) for r in rows}
        self._unknown.clear()
        self._loaded_at = started
        self.loads += 1

    async def _lookup(self, digest: str) -> _Entry | None:
        """A key the snapshot does not hold: one query (made since the snapshot?), remembered for ``cache_s``."""
        seen = self._unknown.get(digest)
        if seen is not None and time.monotonic() - seen < self.cache_s:
            return None
        query = select(api_keys).where(api_keys.c.key_hash == digest)
        rows = await database.fetch(self.engine, query, what="looking up a key", mappings=True)
        row = rows[0] if rows else None
        if row is None:
            if len(self._unknown) > 10_000:
                self._unknown.clear()
            self._unknown[digest] = time.monotonic()
            return None
        entry = _entry(row)
        self._keys[digest] = entry
        return entry


def _entry(row: Any) -> _Entry:
    principal = None if row["revoked"] else Principal(row["name"], frozenset(row["scopes"]))
    return _Entry(principal, _aware(row["expires_at"]))

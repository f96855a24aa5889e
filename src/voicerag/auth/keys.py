"""API keys: created once (the key is shown once), stored as SHA-256 hashes, verified from memory.

Keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed). Verified keys are
kept in memory for ``cache_s``: a revocation takes effect at once on the process that revoked, and within
``cache_s`` on the others."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicerag.auth.scopes import Principal, parse_scopes
from voicerag.documents.store import metadata
from voicerag.errors import InvalidInput, NotFound

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
        }


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ApiKeys:
    """Create, list, revoke and verify keys in the store."""

    def __init__(self, engine: AsyncEngine, cache_s: float = 10.0):
        self.engine = engine
        self.cache_s = cache_s
        self._verified: dict[str, tuple[Principal | None, float]] = {}
        self._any: tuple[bool, float] | None = None

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
        self._any = (True, time.monotonic())
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
            raise NotFound(f"no key is named {name!r}")
        self._verified.clear()
        self._any = None

    async def any_active(self) -> bool:
        """Whether any usable key exists (then every request needs one)."""
        if self._any is not None and time.monotonic() - self._any[1] < self.cache_s:
            return self._any[0]
        now = datetime.now(UTC)
        found = any(not k.revoked and (k.expires_at is None or k.expires_at > now) for k in await self.list())
        self._any = (found, time.monotonic())
        return found

    async def verify(self, key: str) -> Principal | None:
        """The key's principal, or None when it is unknown, revoked or expired."""
        digest = _hash(key)
        cached = self._verified.get(digest)
        if cached is not None and time.monotonic() - cached[1] < self.cache_s:
            return cached[0]
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == digest))).mappings().one_or_none()
        principal = None
        if row is not None and not row["revoked"]:
            expires = _aware(row["expires_at"])
            if expires is None or expires > datetime.now(UTC):
                principal = Principal(row["name"], frozenset(row["scopes"]))
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[digest] = (principal, time.monotonic())
        return principal

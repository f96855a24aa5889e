"""Scopes: ``read:COLLECTION``, ``write:COLLECTION`` (``*`` for every collection) and ``admin``.

``write`` implies ``read`` of the same collections; ``admin`` implies everything."""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicerag.errors import Forbidden, InvalidInput

_SCOPE = re.compile(r"^(?:admin|(?:read|write):(?:\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,127}))$")


def parse_scopes(values: list[str]) -> frozenset[str]:
    """The scopes, checked; a 4xx naming the first bad one."""
    if not values:
        raise InvalidInput("give at least one scope: read:COLLECTION, write:COLLECTION ('*' for all) or admin")
    for value in values:
        if not _SCOPE.match(value):
            raise InvalidInput(
                f"scope {value[:80]!r} is not one of read:COLLECTION, write:COLLECTION ('*' for all), admin"
            )
    return frozenset(values)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a key's name and scopes (or anonymous, with every right, when auth is off)."""

    name: str
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def can(self, action: str, collection: str) -> bool:
        """``action`` is ``read`` or ``write``."""
        if self.is_admin:
            return True
        actions = ("read", "write") if action == "read" else ("write",)
        return any(f"{a}:{c}" in self.scopes for a in actions for c in (collection, "*"))

    def require(self, action: str, collections: list[str]) -> None:
        for collection in collections:
            if not self.can(action, collection):
                raise Forbidden(f"the key {self.name!r} has no {action} access to collection {collection!r}")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden(f"the key {self.name!r} lacks the admin scope this route needs")


ANONYMOUS = Principal("anonymous", frozenset({"admin"}))

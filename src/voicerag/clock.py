"""Time, as a part that can be handed in: the cache tiers (expiry), the Redis tier's breaker and the rate limiter
read it through a ``Clock``, so a test moves time forward instead of sleeping through it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (expiry stamps shared across processes)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never goes back (intervals within one process)."""
        ...


class SystemClock:
    """The real time."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()

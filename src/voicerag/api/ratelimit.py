"""Per-caller rate limits: a token bucket per API key (or per client address while no key is needed), in this
process. ``rate`` requests per second on average, bursts of up to ``burst``."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from voicerag.errors import TooManyRequests


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_callers: int = 100_000):
        self.rate = rate
        self.burst = burst
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, at)

    def take(self, caller: str) -> None:
        """Spend one token of ``caller``'s bucket, or raise 429 saying when the next one is due."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, at = self._buckets.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[caller] = (tokens, now)
            wait = (1 - tokens) / self.rate
            raise TooManyRequests(
                f"{caller!r} is over its rate limit of {self.rate:g} requests/s (bursts of {self.burst}); "
                f"retry in {wait:.2f} s (VOICERAG_RATE_LIMIT_PER_S)",
                retry_after_s=wait,
            )
        self._buckets[caller] = (tokens - 1, now)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))

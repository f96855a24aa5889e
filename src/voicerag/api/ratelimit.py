"""Per-caller rate limits: a token bucket per API key (or per client address while no key is needed), shared
by every replica through Redis when it is configured (one Lua script per request, atomic), in this process
otherwise or while Redis is away. ``rate`` requests per second on average, bursts of up to ``burst``."""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from typing import Any

from voicerag.clock import SYSTEM_CLOCK, Clock
from voicerag.errors import TooManyRequests

log = logging.getLogger(__name__)

BUCKET = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int,
        max_callers: int = 100_000,
        setting: str = "VOICERAG_RATE_LIMIT_PER_S",
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.rate = rate
        self.clock = clock
        self.burst = burst
        self.setting = setting  # named in the 429's message
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, at)
        self._script: Any = None

    def retune(self, rate: float, burst: int) -> None:
        """New limits (live configuration); buckets keep their tokens, capped at the new burst."""
        self.rate, self.burst = rate, burst

    async def take(self, caller: str, redis: Any = None) -> None:
        """Spend one token of ``caller``'s bucket, or raise 429 saying when the next one is due."""
        if self.rate <= 0:
            return
        tokens = None
        if redis is not None:
            try:
                if self._script is None:
                    self._script = redis.register_script(BUCKET)
                allowed, left = await self._script(
                    keys=[f"voicerag:rate:{caller}"], args=[self.rate, self.burst, self.clock.time()]
                )
                tokens = float(left) + (1 if int(allowed) else 0)
            except Exception as exc:  # Redis away: this process keeps limiting on its own
                log.debug("rate limit falls back to this process: %s", exc)
                tokens = None
        if tokens is None:
            tokens = self._take_locally(caller)
        if tokens < 1:
            wait = (1 - tokens) / self.rate
            raise TooManyRequests(
                f"{caller!r} is over its rate limit of {self.rate:g} requests/s (bursts of {self.burst}); "
                f"retry in {wait:.2f} s ({self.setting})",
                retry_after_s=wait,
            )

    def _take_locally(self, caller: str) -> float:
        """The bucket's tokens before this request (a token is spent when there was one)."""
        now = self.clock.monotonic()
        tokens, at = self._buckets.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        self._buckets[caller] = (tokens - 1 if tokens >= 1 else tokens, now)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return tokens

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))

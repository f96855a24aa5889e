"""Cross-replica messages over Redis pub/sub: a generation bump after a write (listeners catch up and never
serve what is stale) and live configuration changes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

CHANNEL = "voicerag:invalidate"


class InvalidationBus:
    """Publishes ``{"collection", "generation", "origin"}`` on every write and ``{"kind": "config", "settings",
    "origin"}`` on a live configuration change; calls ``on_message`` for other replicas' messages."""

    def __init__(self, redis: Any, origin: str, on_message: Callable[[dict[str, Any]], Awaitable[None]]):
        self.redis = redis
        self.origin = origin
        self.on_message = on_message
        self._task: asyncio.Task[None] | None = None
        self.received = 0

    async def publish(self, collection: str, generation: int) -> None:
        """Announce a write (a replica that misses it still reads the generation from the store)."""
        await self._send({"collection": collection, "generation": generation}, f"invalidation for {collection!r}")

    async def publish_config(self, settings: dict[str, list[Any]]) -> None:
        """Announce live settings changed here ({name: [value, who]}) to the other replicas (a replica that
        misses it reads the kept changes from Redis when it starts)."""
        await self._send({"kind": "config", "settings": settings}, "the configuration change")

    async def _send(self, message: dict[str, Any], what: str) -> None:
        try:
            await self.redis.publish(CHANNEL, json.dumps(message | {"origin": self.origin}))
        except Exception as exc:  # a lost message is caught up by other means (see the callers)
            log.warning("could not publish %s: %s", what, exc)

    async def start(self) -> None:
        """Subscribe (before returning, so nothing published from now on is missed), then listen."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
        except Exception as exc:  # Redis away: the listener keeps trying
            log.warning("not subscribed to other replicas' messages yet: %s", exc)
            await pubsub.aclose()
            pubsub = None
        self._task = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, subscribed: Any = None) -> None:
        while True:
            pubsub, subscribed = subscribed or self.redis.pubsub(ignore_subscribe_messages=True), None
            try:
                if not pubsub.subscribed:
                    await pubsub.subscribe(CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    data = json.loads(message["data"])
                    if data.get("origin") != self.origin:
                        self.received += 1
                        await self.on_message(data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("invalidation listener reconnecting after: %s", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

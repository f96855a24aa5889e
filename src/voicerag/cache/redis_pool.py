"""The Redis connection pool (redis-py asyncio, hiredis parser when installed)."""

from __future__ import annotations

from typing import Any

from voicerag.config import Settings


def create_redis(settings: Settings) -> Any:
    """A pooled client with short timeouts, health checks and retries on connection errors."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError

    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=settings.redis_health_check_s,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), 1),
        retry_on_error=[ConnectionError, TimeoutError],
    )
    return aioredis.Redis(connection_pool=pool)

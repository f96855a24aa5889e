"""The tiered cache against the real Redis and PostgreSQL: tiers, promotion, TTL, LRU, single-flight,
invalidation across replicas, and surviving Redis or PostgreSQL outages."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest

from tests.helpers import PG_URL, TEST_REDIS, ManualClock, free_port, need_service, wait_for_sync
from voicerag import Document, VoiceRAG
from voicerag.cache.tiered import Policy, TieredCache, make_key
from voicerag.cache.tiers import ENTRY_OVERHEAD, MemoryTier, RedisTier, SQLTier
from voicerag.documents.store import SQLDocumentStore
from voicerag.pools import Pools


@pytest.fixture
async def tiers(redis_client, backend_settings):
    settings = backend_settings(redis_url=TEST_REDIS)
    pools = Pools.create(settings)
    await SQLDocumentStore(pools.engine).create_schema()
    memory = MemoryTier({"answer": 10_000, "embedding": 10_000})
    yield memory, RedisTier(pools.redis), SQLTier(pools.engine)
    await pools.aclose()


def cache_of(tiers, ttl: float = 60) -> TieredCache:
    policies = {"answer": Policy("answer", ttl, 0.5), "embedding": Policy("embedding", ttl, 0.5)}
    return TieredCache(list(tiers), policies)


async def test_read_through_and_promotion(tiers) -> None:
    memory, redis, sql = tiers
    cache = cache_of(tiers)
    calls = []

    async def compute():
        calls.append(1)
        return {"answer": "42"}

    assert await cache.get_or_compute("answer", ("q",), compute) == ({"answer": "42"}, False)
    assert await cache.get_or_compute("answer", ("q",), compute) == ({"answer": "42"}, True)
    assert len(calls) == 1 and cache.stats["answer"].tiers["memory"].hits == 1
    # a new process: empty memory; the Redis hit is promoted into memory
    fresh = cache_of((MemoryTier({"answer": 10_000, "embedding": 10_000}), redis, sql))
    assert (await fresh.get_or_compute("answer", ("q",), compute))[1] is True
    assert fresh.stats["answer"].tiers["redis"].hits == 1
    assert (await fresh.get_or_compute("answer", ("q",), compute))[1] is True
    assert fresh.stats["answer"].tiers["memory"].hits == 1
    # only SQL left: it serves, and promotes into Redis and memory
    await redis.clear()
    third = cache_of((MemoryTier({"answer": 10_000, "embedding": 10_000}), redis, sql))
    assert (await third.get_or_compute("answer", ("q",), compute))[1] is True
    assert third.stats["answer"].tiers["sql"].hits == 1
    assert await redis.get(_key("answer", ("q",))) is not None
    assert len(calls) == 1


def _key(policy, parts):
    from voicerag.cache.tiered import make_key

    return make_key(policy, parts)


async def test_ttl_expiry_in_every_tier(tiers) -> None:
    """Memory and SQL expire by the clock they are given (moved forward here, not slept through); Redis keeps
    its own time, so the TTL it was handed is read back."""
    _, redis, sql = tiers
    clock = ManualClock()
    memory = MemoryTier({"answer": 10_000, "embedding": 10_000}, clock=clock)
    cache = cache_of((memory, redis, SQLTier(sql.engine, clock=clock)), ttl=30)
    await cache.set("answer", ("t",), "v")
    assert await cache.get("answer", ("t",)) == "v"
    assert 0 < await redis.redis.pttl(_key("answer", ("t",))) <= 30_000
    clock.advance(29)
    assert await memory.get(_key("answer", ("t",))) is not None
    clock.advance(1)
    for tier in cache.tiers:
        if tier is not redis:
            assert await tier.get(_key("answer", ("t",))) is None, tier.name
    await redis.clear(policy="answer")
    assert await cache.get("answer", ("t",)) is None


async def test_memory_lru_is_bounded_by_bytes() -> None:
    entry = 275 + ENTRY_OVERHEAD  # 75-byte keys, 200-byte values, and the bookkeeping: 7 fit
    memory = MemoryTier({"answer": 7 * entry + entry // 2})
    key = lambda i: f"vr1:answer:{i:064d}"  # noqa: E731
    for i in range(10):
        await memory.set(key(i), b"x" * 200, 60, "answer", ())
        if i == 5:
            assert await memory.get(key(0)) is not None  # touch 0: it becomes most recently used
    assert memory.bytes_used("answer") == 7 * entry
    assert await memory.get(key(0)) is not None and await memory.get(key(9)) is not None
    assert [await memory.get(key(i)) for i in (1, 2, 3)] == [None, None, None]
    assert memory.evictions["answer"] == 3
    await memory.set(key(99), b"x" * 8 * entry, 60, "answer", ())  # larger than the budget: not stored
    assert await memory.get(key(99)) is None


async def test_single_flight_100_concurrent_misses_compute_once(tiers) -> None:
    cache = cache_of(tiers)
    calls = 0

    async def slow():
        nonlocal calls
        calls += 1
        while cache.stats["answer"].coalesced < 99:  # still computing when every other caller has arrived
            await asyncio.sleep(0)
        return [1, 2, 3]

    async with asyncio.timeout(60):  # a hang guard only
        results = await asyncio.gather(*(cache.get_or_compute("answer", ("same",), slow) for _ in range(100)))
    assert calls == 1 and all(r[0] == [1, 2, 3] for r in results)
    assert cache.stats["answer"].coalesced == 99


async def test_a_waiting_caller_computes_when_the_computing_one_is_cancelled(tiers) -> None:
    """Two callers of one key: the first computes, the second waits on it; the first's client goes away. The
    second gets the value (computing it itself), not the first one's cancellation."""
    cache = cache_of(tiers)
    started, release = asyncio.Event(), asyncio.Event()
    computed = []

    async def compute():
        computed.append(1)
        started.set()
        await release.wait()
        return ["value"]

    async with asyncio.timeout(60):  # only to catch a hang (without the take-over, nobody computes)
        first = asyncio.create_task(cache.get_or_compute("answer", ("shared",), compute))
        await started.wait()
        second = asyncio.create_task(cache.get_or_compute("answer", ("shared",), compute))
        while cache.stats["answer"].coalesced < 1:  # the second is waiting on the first
            await asyncio.sleep(0)
        started.clear()
        first.cancel()
        await started.wait()  # the second computes now
        release.set()
        assert await second == (["value"], False)
        assert first.cancelled() and len(computed) == 2
        # a waiting caller that is itself cancelled still stops
        started.clear()
        release.clear()
        leader = asyncio.create_task(cache.get_or_compute("answer", ("other",), compute))
        await started.wait()
        waiter = asyncio.create_task(cache.get_or_compute("answer", ("other",), compute))
        while cache.stats["answer"].coalesced < 2:
            await asyncio.sleep(0)
        waiter.cancel()
        release.set()
        assert await leader == (["value"], False)
        with pytest.raises(asyncio.CancelledError):
            await waiter


async def test_corrupt_entries_are_misses_and_removed(tiers) -> None:
    memory, redis, sql = tiers
    cache = cache_of(tiers)
    key = _key("embedding", ("m", "t"))
    await sql.set(key, b"\xc1 not msgpack", 60, "embedding", ())
    value, hit = await cache.get_or_compute("embedding", ("m", "t"), lambda: _value("fresh"))
    assert (value, hit) == ("fresh", False) and cache.stats["embedding"].corrupt == 1
    assert (await cache.get_or_compute("embedding", ("m", "t"), lambda: _value("again")))[0] == "fresh"


async def _value(v):
    return v


async def test_invalidation_by_policy_tag_and_pattern(tiers) -> None:
    cache = cache_of(tiers)
    await cache.set("answer", ("a",), 1, tags=("collection:x",))
    await cache.set("answer", ("b",), 2, tags=("collection:y",))
    await cache.set("embedding", ("c",), 3)
    removed = await cache.invalidate(tag="collection:x")
    assert removed == {"memory": 1, "redis": 1, "sql": 1}
    assert await cache.get("answer", ("a",)) is None and await cache.get("answer", ("b",)) == 2
    await cache.invalidate(pattern="vr1:embedding:*")
    assert await cache.get("embedding", ("c",)) is None and await cache.get("answer", ("b",)) == 2
    await cache.invalidate()
    assert await cache.get("answer", ("b",)) is None


async def test_two_replicas_sharing_redis_and_postgres_see_new_answers(redis_client, make_settings, facts) -> None:
    need_service("PostgreSQL", "127.0.0.1", 5432)
    from tests.conftest import reset_postgres

    await reset_postgres()
    one = await VoiceRAG.open(
        make_settings(database_url=PG_URL, redis_url=TEST_REDIS, data_dir=make_settings().data_dir / "a")
    )
    two = await VoiceRAG.open(
        make_settings(database_url=PG_URL, redis_url=TEST_REDIS, data_dir=make_settings().data_dir / "b")
    )
    try:
        await one.ingest("kb", facts)
        question = "When was the Eiffel Tower completed?"
        assert "1889" in (await two.ask(question, ["kb"])).text
        await two.cache.flush()  # written behind the response
        assert (await one.ask(question, ["kb"])).cached  # shared through Redis
        report = await one.ingest(
            "kb", [Document("paris", "The Eiffel Tower was completed in 1887, says this edit.", "Paris")]
        )
        await wait_for_sync(two, "kb", report.generation)  # the other replica hears of the commit (NOTIFY)
        fresh = await two.ask(question, ["kb"])  # new generation, so a miss, new answer
        assert "1887" in fresh.text and not fresh.cached
        await two.cache.flush()
        shared = await one.ask(question, ["kb"])  # the writer: the answer two computed, under the new generation
        assert "1887" in shared.text and shared.cached
        deadline = time.monotonic() + 10
        while two.bus.received == 0 and time.monotonic() < deadline:  # pub/sub reached the other replica
            await asyncio.sleep(0.01)
        assert two.bus.received >= 1
    finally:
        await one.aclose()
        await two.aclose()


@pytest.fixture
def own_redis():
    """A redis-server this test owns, on its own port, to kill and restart."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()

    def start():
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    procs = [start()]
    yield port, procs, start
    for p in procs:
        p.kill()
        p.wait()


async def test_redis_killed_mid_load_no_request_fails(own_redis, make_settings, facts, caplog) -> None:
    port, procs, start = own_redis
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0", cache_memory_mb=0)
    questions = ["Who created Python?", "When was the Eiffel Tower completed?", "How long does a cat sleep?"]
    async with await VoiceRAG.open(settings) as rag:
        await rag.ingest("kb", facts)
        redis_tier = next(t for t in rag.cache.tiers if t.name == "redis")
        redis_tier.clock = clock = ManualClock()  # the breaker's pause passes when the test says so
        failures, answers = [], 0

        async def load(rounds: int):
            nonlocal answers
            for i in range(rounds):
                try:
                    answer = await rag.ask(questions[i % 3] + " " * (i % 5), ["kb"])
                    assert answer.text
                    answers += 1
                except Exception as exc:  # noqa: BLE001 - the point is to count them
                    failures.append(exc)

        await load(10)
        procs[0].kill()
        procs[0].wait()
        await asyncio.gather(*(load(20) for _ in range(4)))
        assert redis_tier.down_since is not None
        warnings = [r for r in caplog.records if "Redis cache tier unavailable" in r.getMessage()]
        assert len(warnings) == 1  # once per outage
        procs.append(start())
        clock.advance(redis_tier.retry_after_s)
        await rag.cache.invalidate(policy="answer")
        await load(10)
        assert redis_tier.down_since is None  # reconnected by itself
        assert failures == [] and answers == 100
        assert await rag.pools.redis.dbsize() > 0  # writing to Redis again


async def test_postgres_backends_terminated_then_recovered(make_settings, facts) -> None:
    need_service("PostgreSQL", "127.0.0.1", 5432)
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.conftest import reset_postgres

    await reset_postgres()
    async with await VoiceRAG.open(make_settings(database_url=PG_URL, cache_enabled=False)) as rag:
        await rag.ingest("kb", facts)
        for _ in range(5):
            await rag.ask("Who created Python?", ["kb"])
        assert rag.pools.engine.pool.checkedin() >= 1
        admin = create_async_engine(PG_URL)
        async with admin.connect() as conn:
            killed = (
                await conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend'"
                    )
                )
            ).scalar()
        await admin.dispose()
        assert killed >= 1
        results = await asyncio.gather(*(rag.ask("Who created Python?", ["kb"]) for _ in range(10)))
        assert all("Guido" in r.text for r in results)
        report = await rag.ingest("kb", [Document("new", "Mercury is the closest planet to the Sun.", "Mercury")])
        assert report.added == 1


async def test_write_behind_lands_after_flush_and_before_invalidation(make_settings) -> None:
    from voicerag.cache import build_cache
    from voicerag.pools import Pools

    settings = make_settings()
    pools = Pools.create(settings)
    try:
        from voicerag.documents.store import SQLDocumentStore

        await SQLDocumentStore(pools.engine).create_schema()
        cache = build_cache(settings, pools)
        assert cache.write_behind
        await cache.set("stt", ("q",), {"a": 1}, tags=("collection:kb",))
        await cache.flush()
        sql = next(t for t in cache.tiers if t.name == "sql")
        assert await sql.get(make_key("stt", ("q",))) is not None  # landed in L3
        await cache.set("stt", ("q2",), {"a": 2}, tags=("collection:kb",))
        removed = await cache.invalidate(tag="collection:kb")  # waits for the pending write, then removes both
        assert removed["sql"] == 2 and await sql.get(make_key("stt", ("q2",))) is None
    finally:
        await pools.aclose()

"""The memory report's C-heap figures, giving freed heap memory back to the system (glibc), and the bounded
recent-requests window."""

import pytest

from voicerag.operations.memory import _libc, c_heap, python_heap, release_free_memory, rss_bytes

glibc = pytest.mark.skipif(_libc() is None, reason="the C heap figures need glibc (mallinfo2, malloc_trim)")


@glibc
def test_memory_freed_inside_the_heap_is_seen_and_given_back() -> None:
    # 1,000-byte objects come from malloc (over pymalloc's 512-byte limit); keeping one in 16 leaves holes of
    # whole pages inside the heap that malloc keeps (free, still resident) until malloc_trim releases them
    blocks = [bytes(1000) + bytes([i % 251]) for i in range(120_000)]
    kept = blocks[::16]
    del blocks
    before = c_heap()
    assert before is not None and before["free_mb"] >= 50
    released = release_free_memory()
    after = c_heap()
    assert released is not None and released >= 20
    assert after is not None and after["in_use_mb"] >= len(kept) * 1000 / 2**20
    assert rss_bytes() > 0


def test_python_heap_lists_the_top_lines_only_when_tracing() -> None:
    import tracemalloc

    assert python_heap()["tracing"] is False and "top" not in python_heap()
    tracemalloc.start()
    try:
        held = [str(i) * 50 for i in range(20_000)]
        report = python_heap(top=5)
        assert report["tracing"] and report["traced_mb"] > 0.5 and 1 <= len(report["top"]) <= 5
        assert "test_memory.py" in report["top"][0]["where"] and report["top"][0]["count"] >= len(held)
    finally:
        tracemalloc.stop()


def test_the_recent_requests_window_keeps_only_its_horizon() -> None:
    import time

    from voicerag.metrics import RecentRequests, RequestSample

    recent = RecentRequests(maxlen=100, horizon_s=5)
    for age in (60, 30, 6):  # older than the horizon: they go with the next request
        recent.samples.append(RequestSample(time.monotonic() - age, "/v1/ask", 0.01, 200))
    recent.samples.append(kept := RequestSample(time.monotonic() - 1, "/v1/ask", 0.01, 200))
    recent.add("/v1/search", 0.02, 200)
    assert list(recent.samples)[0] is kept and len(recent.samples) == 2
    for _ in range(150):
        recent.add("/v1/search", 0.02, 200)
    assert len(recent.samples) == 100  # and never more than maxlen


async def test_the_cache_budget_counts_what_an_entry_really_costs() -> None:
    import os
    import tracemalloc

    from voicerag.cache.tiers import ENTRY_OVERHEAD, MemoryTier

    tier = MemoryTier({"answer": 10**10})
    payload = 0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            key, value = f"vr1:answer:{os.urandom(16).hex()}", os.urandom(1000)
            await tier.set(key, value, 3600, "answer", ("collection:docs",))
            payload += len(key) + len(value)
        overhead = (tracemalloc.get_traced_memory()[0] - before - payload) / 20_000
    finally:
        tracemalloc.stop()
    assert 0.7 * ENTRY_OVERHEAD <= overhead <= 1.3 * ENTRY_OVERHEAD, overhead
    assert tier.bytes_used("answer") == payload + 20_000 * ENTRY_OVERHEAD

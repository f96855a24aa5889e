"""Where the process's memory goes: resident size, the C heap (glibc's own figures: in use, free but held, and
mapped), Python's allocations, the caches' and the read model's shares, and, when tracing is on
(``PYTHONTRACEMALLOC=1``), the lines of code that hold the most. ``GET /v1/admin/memory`` shows it; maintenance
hands memory the heap holds free back to the system (``malloc_trim``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource
import sys
import tracemalloc
from functools import cache
from typing import Any

MB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@cache
def _libc() -> Any | None:
    """glibc, when this process runs on it and it has ``mallinfo2`` (glibc 2.33+); otherwise None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def rss_bytes() -> int:
    """Resident set size now (Linux ``/proc``; elsewhere the peak, which is what the OS offers)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def c_heap() -> dict[str, float] | None:
    """The C heap across all malloc arenas, in MB: ``in_use`` (allocated), ``free`` (freed but held by malloc,
    counted in RSS where touched) and ``mapped`` (large blocks mmapped on their own). None off glibc."""
    libc = _libc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return {
        "in_use_mb": round((info.uordblks + info.hblkhd) / MB, 1),
        "free_mb": round(info.fordblks / MB, 1),
        "mapped_mb": round(info.hblkhd / MB, 1),
    }


def release_free_memory() -> float | None:
    """Hand the heap's free pages back to the system (``malloc_trim(0)``); the MB of RSS this gave back, or None
    off glibc."""
    libc = _libc()
    if libc is None:
        return None
    before = rss_bytes()
    libc.malloc_trim(0)
    return round(max(0, before - rss_bytes()) / MB, 1)


def python_heap(top: int = 15) -> dict[str, Any]:
    """Python's allocated blocks; with tracing on, the traced total and the lines holding the most."""
    out: dict[str, Any] = {
        "allocated_blocks": sys.getallocatedblocks(),
        "gc_frozen_objects": gc.get_freeze_count(),  # out of the collector's sight since start-up (settle_heap)
        "tracing": tracemalloc.is_tracing(),
    }
    if tracemalloc.is_tracing():
        traced, peak = tracemalloc.get_traced_memory()
        stats = tracemalloc.take_snapshot().statistics("lineno")[:top]
        out |= {
            "traced_mb": round(traced / MB, 1),
            "traced_peak_mb": round(peak / MB, 1),
            "top": [
                {
                    "where": f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                    "mb": round(s.size / MB, 2),
                    "count": s.count,
                }
                for s in stats
            ],
        }
    return out


def memory_report(rag: Any) -> dict[str, Any]:
    """The whole picture for one process (see the module docstring)."""
    caches = {
        policy: stats["tiers"]["memory"]["bytes"]
        for policy, stats in rag.cache.stats_json().items()
        if "bytes" in stats["tiers"].get("memory", {})
    }
    return {
        "rss_mb": round(rss_bytes() / MB, 1),
        "c_heap": c_heap(),
        "python": python_heap(),
        "cache_mb": {policy: round(size / MB, 2) for policy, size in caches.items()},
        "cache_budget_mb": rag.settings.cache_memory_mb,
        "read_model": rag.retriever.memory(),
    }

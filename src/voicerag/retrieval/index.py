"""Dense vector indexes: the ``VectorIndex`` protocol every backend implements, the kind chooser, and the
factory that builds or loads a backend by kind. One module per backend (FAISS: ``faiss_index.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

DENSE_KINDS = ("flat", "ivf", "hnsw")


class VectorIndex(Protocol):
    """Nearest neighbours by inner product of normalised vectors; ids are chunk ids (never reused)."""

    kind: str

    def __len__(self) -> int: ...
    @property
    def needs_rebuild(self) -> bool: ...
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def ids(self) -> np.ndarray: ...
    def snapshot(self) -> tuple[np.ndarray, np.ndarray]: ...
    def save(self, path: Path) -> dict[str, Any]: ...


def blocking_io(index: VectorIndex) -> bool:
    """Whether the index waits on the network (it must then never be called on the event loop)."""
    return bool(getattr(index, "blocking_io", False))


@dataclass
class IndexParams:
    """Build parameters, and the search parameters (efSearch, nprobe) that live configuration may change: one
    object shared by a backend and its indexes, read at each search."""

    hnsw_m: int = 32
    hnsw_ef_construction: int = 100
    hnsw_ef_search: int = 128
    ivf_nprobe: int = 48


def choose_kind(requested: str, count: int, dim: int, hnsw_threshold: int, memory_budget_mb: float, m: int) -> str:
    """``auto``: FLAT below ``hnsw_threshold`` vectors; HNSW above; IVF when HNSW would not fit the budget."""
    if requested != "auto":
        return requested
    if count < hnsw_threshold:
        return "flat"
    hnsw_mb = count * (dim * 4 + m * 2 * 4 * 1.1) / 1e6
    return "ivf" if hnsw_mb > memory_budget_mb else "hnsw"


def ivf_nlist(count: int) -> int:
    """IVF list count: ~4 sqrt(n), with at least ~39 training points per list."""
    return max(1, min(int(4 * math.sqrt(max(count, 1))), count // 39))


class DenseBackend(Protocol):
    """Makes the dense index of a collection: which kind fits a size, a new one, or one saved before."""

    def kind_for(self, count: int) -> str: ...
    def build(self, collection: str, kind: str, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex: ...
    def load(self, collection: str, path: Path, meta: dict[str, Any]) -> VectorIndex: ...
    async def drop(self, collection: str) -> None: ...

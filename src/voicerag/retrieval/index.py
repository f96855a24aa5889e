"""Dense vector index: FAISS FLAT, IVF and HNSW over inner product of normalised vectors, and the chooser."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

# Single queries are fastest on one OpenMP thread; many threads fight numpy's BLAS threads (see MODELS.md).
faiss.omp_set_num_threads(1)


class VectorIndex(Protocol):
    """Nearest neighbours by inner product; ids are chunk ids."""

    kind: str

    def __len__(self) -> int: ...
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class IndexParams:
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


class FaissIndex:
    """A FAISS index wrapped with id mapping. HNSW cannot delete: removed ids become tombstones, filtered out
    of results, and the graph is rebuilt when they pass a fifth of the index."""

    def __init__(self, kind: str, dim: int, params: IndexParams, index: faiss.Index | None = None):
        if kind not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"index kind must be flat, ivf or hnsw, not {kind!r}")
        self.kind = kind
        self.dim = dim
        self.params = params
        self.tombstones: set[int] = set()
        self.trained_on = 0
        self._lock = threading.Lock()
        self.index = index if index is not None else self._empty(0, None)
        if self.kind == "ivf" and index is not None:
            self.trained_on = self.index.ntotal

    def _empty(self, count: int, training: np.ndarray | None) -> faiss.Index:
        if self.kind == "flat":
            inner: faiss.Index = faiss.IndexFlatIP(self.dim)
        elif self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.params.hnsw_ef_construction
        else:
            nlist = ivf_nlist(count)
            quantizer = faiss.IndexFlatIP(self.dim)
            inner = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            if training is not None and len(training):
                inner.train(np.ascontiguousarray(training, dtype=np.float32))
            self.trained_on = count
        return faiss.IndexIDMap2(inner)

    @classmethod
    def build(cls, kind: str, dim: int, params: IndexParams, ids: np.ndarray, vectors: np.ndarray) -> FaissIndex:
        """A new index holding ``vectors`` under ``ids`` (IVF is trained on them)."""
        index = cls(kind, dim, params)
        if kind == "ivf":
            index.index = index._empty(len(ids), vectors)
        index.add(ids, vectors)
        return index

    def __len__(self) -> int:
        return self.index.ntotal - len(self.tombstones)

    @property
    def needs_rebuild(self) -> bool:
        """True when tombstones pass a fifth of the graph, or an IVF has grown 4x past its training set."""
        if self.kind == "hnsw":
            return len(self.tombstones) > max(1000, self.index.ntotal // 5)
        if self.kind == "ivf":
            return self.index.ntotal > 4 * max(self.trained_on, 1000) or not self.index.index.is_trained
        return False

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            if self.kind == "ivf" and not self.index.index.is_trained:
                self.index = self._empty(len(ids), vectors)
            self.index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self._lock:
            if self.kind == "hnsw":
                self.tombstones.update(int(i) for i in ids)
            else:
                self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) per query row; missing slots have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with self._lock:
            if self.index.ntotal == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            extra = min(len(self.tombstones), 4 * k + 64) if self.tombstones else 0
            fetch = min(k + extra, self.index.ntotal)
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(efSearch=max(self.params.hnsw_ef_search, fetch))
                scores, ids = self.index.search(queries, fetch, params=params)
            elif self.kind == "ivf":
                params = faiss.SearchParametersIVF(nprobe=self.params.ivf_nprobe)
                scores, ids = self.index.search(queries, fetch, params=params)
            else:
                scores, ids = self.index.search(queries, fetch)
        if self.tombstones:
            dead = np.isin(ids, np.fromiter(self.tombstones, np.int64))
            ids = np.where(dead, -1, ids)
            order = np.argsort(ids == -1, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        return scores[:, :k], ids[:, :k]

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live entry, for a rebuild into another kind."""
        with self._lock:
            n = self.index.ntotal
            if n == 0:
                return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            if self.kind == "ivf":
                vectors = np.stack([self.index.reconstruct(int(i)) for i in ids])
            else:
                vectors = self.index.index.reconstruct_n(0, n)
        if self.tombstones:
            keep = ~np.isin(ids, np.fromiter(self.tombstones, np.int64))
            ids, vectors = ids[keep], vectors[keep]
        return ids, vectors

    def save(self, path: Path, generation: int) -> None:
        """Write the index and its metadata atomically (temp file, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with self._lock:
            faiss.write_index(self.index, str(tmp))
            meta = {"generation": generation, "kind": self.kind, "dim": self.dim, "tombstones": sorted(self.tombstones)}
        tmp.replace(path)
        meta_tmp = path.with_suffix(".json.tmp")
        meta_tmp.write_text(json.dumps(meta))
        meta_tmp.replace(path.with_suffix(".json"))

    @classmethod
    def load(cls, path: Path, generation: int, dim: int, params: IndexParams) -> FaissIndex | None:
        """The saved index if it reflects ``generation``; None when missing, stale or unreadable."""
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text())
            if meta["generation"] != generation or meta["dim"] != dim:
                return None
            index = cls(meta["kind"], dim, params, faiss.read_index(str(path)))
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        index.tombstones = set(meta.get("tombstones", []))
        return index

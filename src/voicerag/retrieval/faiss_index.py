"""The FAISS backend of ``VectorIndex``: FLAT, IVF and HNSW over inner product, with id mapping."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from voicerag.retrieval.index import DENSE_KINDS, IndexParams, VectorIndex, choose_kind, ivf_nlist

# Single queries are fastest on one OpenMP thread; many threads fight numpy's BLAS threads (see MODELS.md).
faiss.omp_set_num_threads(1)


class ReadWriteLock:
    """Many readers (searches, saves) at once, or one writer (adds, removals). FAISS searches are safe to run
    concurrently with each other and with serialisation, never with a change."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._readers == 0)
            yield


class FaissIndex:
    """A FAISS index wrapped with id mapping. HNSW cannot delete: removed ids become tombstones, filtered out
    of results, and the graph is rebuilt when they pass a fifth of the index."""

    def __init__(self, kind: str, dim: int, params: IndexParams, index: faiss.Index | None = None):
        if kind not in DENSE_KINDS:
            raise ValueError(f"index kind must be flat, ivf or hnsw, not {kind!r}")
        self.kind = kind
        self.dim = dim
        self.params = params
        self.tombstones: set[int] = set()
        self.trained_on = 0
        self._lock = ReadWriteLock()
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
            return inner  # IVF keeps the chunk ids in its lists itself: removal and listing need no id map
        return faiss.IndexIDMap2(inner)

    @classmethod
    def build(cls, kind: str, dim: int, params: IndexParams, ids: np.ndarray, vectors: np.ndarray) -> FaissIndex:
        """A new index holding ``vectors`` under ``ids`` (IVF is trained on them)."""
        index = cls(kind, dim, params)
        if kind == "ivf":
            index.index = index._empty(len(ids), vectors)
        index.add(ids, vectors)
        index.make_room()
        return index

    def make_room(self) -> None:
        """Let the next add find room: FAISS keeps FLAT and HNSW vectors (and the graph's links) in arrays sized
        exactly after a load or a bulk add, so the first add after either moves them all (hundreds of ms at 100k
        vectors under load, docs/READ_PATH.md) while holding the write lock, and every search waits. Growing
        them here, before the index serves, makes their capacity double (untouched memory, so not resident),
        and the next 100k adds move nothing. Costs that one move, once."""
        if self.kind == "ivf" or self.index.ntotal == 0:
            return
        inner = faiss.downcast_index(self.index.index)
        flat = faiss.downcast_index(inner.storage) if self.kind == "hnsw" else inner
        arrays = [flat.codes, self.index.id_map]
        if self.kind == "hnsw":
            arrays += [inner.hnsw.neighbors, inner.hnsw.levels, inner.hnsw.offsets]
        with self._lock.write():
            for array in arrays:
                if getattr(array, "is_owned", True):  # a memory-mapped index is read-only: left alone
                    size = array.size()
                    array.resize(size + 1)  # one more element: the vector reallocates to twice its size
                    array.resize(size)

    def __len__(self) -> int:
        return self.index.ntotal - len(self.tombstones)

    @property
    def needs_rebuild(self) -> bool:
        """True when tombstones pass a fifth of the graph, or an IVF has grown 4x past its training set."""
        if self.kind == "hnsw":
            return len(self.tombstones) > max(1000, self.index.ntotal // 5)
        if self.kind == "ivf":
            return self.index.ntotal > 4 * max(self.trained_on, 1000) or not self.index.is_trained
        return False

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock.write():
            if self.kind == "ivf" and not self.index.is_trained:
                self.index = self._empty(len(ids), vectors)
            self.index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self._lock.write():
            if self.kind == "hnsw":
                self.tombstones.update(int(i) for i in ids)
            else:
                self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) per query row; missing slots have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with self._lock.read():
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
            dead_ids = np.fromiter(self.tombstones, np.int64, len(self.tombstones)) if self.tombstones else None
        if dead_ids is not None:
            dead = np.isin(ids, dead_ids)
            ids = np.where(dead, -1, ids)
            order = np.argsort(ids == -1, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        return scores[:, :k], ids[:, :k]

    def _ivf_lists(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) read straight from an IVF-Flat index's inverted lists (its codes are the vectors)."""
        invlists = self.index.invlists
        ids, vectors = [np.zeros(0, np.int64)], [np.zeros((0, self.dim), np.float32)]
        for lst in range(self.index.nlist):
            n = invlists.list_size(lst)
            if n:
                ids.append(faiss.rev_swig_ptr(invlists.get_ids(lst), n).astype(np.int64))
                codes = faiss.rev_swig_ptr(invlists.get_codes(lst), n * self.index.code_size)
                vectors.append(np.frombuffer(bytes(codes), np.float32).reshape(n, self.dim))
        return np.concatenate(ids), np.concatenate(vectors)

    def ids(self) -> np.ndarray:
        """Ids of every live entry."""
        with self._lock.read():
            if self.kind == "ivf":
                return self._ivf_lists()[0]
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            dead_ids = np.fromiter(self.tombstones, np.int64, len(self.tombstones))
        return ids[~np.isin(ids, dead_ids)] if len(dead_ids) else ids

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live entry, for a rebuild into another kind."""
        with self._lock.read():
            n = self.index.ntotal
            if n == 0:
                return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
            if self.kind == "ivf":
                return self._ivf_lists()
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            vectors = self.index.index.reconstruct_n(0, n)
            dead_ids = np.fromiter(self.tombstones, np.int64, len(self.tombstones))
        if len(dead_ids):
            keep = ~np.isin(ids, dead_ids)
            ids, vectors = ids[keep], vectors[keep]
        return ids, vectors

    def save(self, path: Path) -> dict[str, Any]:
        """Write the index to ``path``; returns what ``load`` needs. Serialising is a read: searches go on
        meanwhile, and the file is written after the lock is released."""
        with self._lock.read():
            data = faiss.serialize_index(self.index)
            meta = {"kind": self.kind, "dim": self.dim, "tombstones": sorted(self.tombstones)}
        # straight from the array's buffer: a bytes copy of a large index holds the interpreter lock for the whole
        # copy (every request waits), where the write releases it
        path.write_bytes(memoryview(data))
        return meta

    @classmethod
    def load(cls, path: Path, meta: dict[str, Any], dim: int, params: IndexParams) -> FaissIndex:
        """The index written by ``save``; raises ValueError when it does not match ``dim`` or is unreadable."""
        if meta.get("dim") != dim:
            raise ValueError(f"index at {path} has dimension {meta.get('dim')}, not {dim}")
        try:
            index = cls(meta["kind"], dim, params, faiss.read_index(str(path)))
        except RuntimeError as exc:
            raise ValueError(f"unreadable index file {path}: {exc}") from exc
        index.tombstones = set(meta.get("tombstones", []))
        index.make_room()
        return index


@dataclass(frozen=True)
class FaissBackend:
    """FAISS in each process (flat, ivf or hnsw, chosen by size), saved to index files."""

    dim: int
    params: IndexParams
    requested: str = "auto"
    hnsw_threshold: int = 20_000
    memory_budget_mb: float = 4096

    def kind_for(self, count: int) -> str:
        return choose_kind(
            self.requested, count, self.dim, self.hnsw_threshold, self.memory_budget_mb, self.params.hnsw_m
        )

    def build(self, collection: str, kind: str, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        return FaissIndex.build(kind, self.dim, self.params, ids, vectors)

    def load(self, collection: str, path: Path, meta: dict[str, Any]) -> VectorIndex:
        return FaissIndex.load(path, meta, self.dim, self.params)

    async def drop(self, collection: str) -> None:
        """Nothing outside the index files, which the read model removes."""

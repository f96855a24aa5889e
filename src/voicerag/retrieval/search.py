"""Hybrid search: per-collection dense + lexical indexes kept in step with the store, fused by RRF."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voicerag.config import SearchMode, Settings
from voicerag.documents.store import DocumentStore, WriteResult
from voicerag.errors import InvalidInput, NotFound
from voicerag.retrieval.index import FaissIndex, IndexParams, choose_kind
from voicerag.retrieval.lexical import LexicalIndex

log = logging.getLogger(__name__)

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name):
        raise InvalidInput(
            f"collection name {name[:80]!r} is not allowed: use 1-128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass
class Hit:
    """One retrieved chunk with its fused score and the per-mode scores and ranks that produced it."""

    chunk_id: int
    collection: str
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None


@dataclass
class CollectionIndex:
    """The dense and lexical indexes of one collection, at one generation of the store."""

    name: str
    generation: int
    dense: FaissIndex
    lexical: LexicalIndex
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    rebuild_task: asyncio.Task[None] | None = None
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


class Retriever:
    """Owns the in-memory indexes of every collection; loads, persists, updates and searches them."""

    def __init__(self, settings: Settings, store: DocumentStore, dim: int):
        self.settings = settings
        self.store = store
        self.dim = dim
        self.params = IndexParams(
            settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search, settings.ivf_nprobe
        )
        self.index_dir = settings.data_dir / "indexes"
        self._indexes: dict[str, CollectionIndex] = {}
        self._load_locks: dict[str, asyncio.Lock] = {}

    def _path(self, name: str) -> Path:
        return self.index_dir / f"{name}.faiss"

    def _kind_for(self, count: int) -> str:
        s = self.settings
        return choose_kind(s.index_type, count, self.dim, s.hnsw_threshold, s.index_memory_budget_mb, s.hnsw_m)

    async def generation(self, name: str) -> int:
        generation = await self.store.generation(name)
        if generation is None:
            raise NotFound(f"collection {name!r} does not exist; create it by ingesting documents into it")
        return generation

    async def index_for(self, name: str, generation: int | None = None) -> CollectionIndex:
        """The collection's indexes at the store's current generation (reloaded if another writer moved it)."""
        if generation is None:
            generation = await self.generation(name)
        current = self._indexes.get(name)
        if current is not None and current.generation >= generation:
            return current
        lock = self._load_locks.setdefault(name, asyncio.Lock())
        async with lock:
            current = self._indexes.get(name)
            if current is not None and current.generation >= generation:
                return current
            if current is not None:
                async with current.lock:  # let a write in flight finish, then re-check
                    if current.generation >= generation:
                        return current
            loaded = await self._load(name, generation)
            self._indexes[name] = loaded
            return loaded

    async def _load(self, name: str, generation: int) -> CollectionIndex:
        dense = await asyncio.to_thread(FaissIndex.load, self._path(name), generation, self.dim, self.params)
        if dense is None:
            ids, vectors = await self.store.load_vectors(name, self.dim)
            kind = self._kind_for(len(ids))
            log.info("building %s index for %r from %d stored vectors", kind, name, len(ids))
            dense = await asyncio.to_thread(FaissIndex.build, kind, self.dim, self.params, ids, vectors)
            await asyncio.to_thread(dense.save, self._path(name), generation)
        text_ids, texts = await self.store.load_texts(name)
        lexical = LexicalIndex()
        await asyncio.to_thread(lexical.update, text_ids, texts, np.zeros(0, np.int64))
        return CollectionIndex(name, generation, dense, lexical)

    async def apply(self, name: str, result: WriteResult, added_texts: list[str]) -> None:
        """Bring the in-memory indexes in step with a committed write (a delta when they were at the previous
        generation, else a reload from the store)."""
        index = self._indexes.get(name)
        if index is not None:
            async with index.lock:
                if index.generation == result.generation - 1 and self._indexes.get(name) is index:
                    await self._apply_delta(index, result, added_texts)
                    return
        self._indexes.pop(name, None)
        await self.index_for(name, result.generation)

    async def _apply_delta(self, index: CollectionIndex, result: WriteResult, added_texts: list[str]) -> None:
        removed = np.asarray(result.removed_chunk_ids, np.int64)
        added = np.asarray(result.added_chunk_ids, np.int64)
        vectors = result.added_vectors.reshape(len(added), self.dim) if len(added) else result.added_vectors
        await asyncio.to_thread(index.dense.remove, removed)
        await asyncio.to_thread(index.dense.add, added, vectors)
        await asyncio.to_thread(index.lexical.update, added, added_texts, removed)
        if index.rebuild_task is not None:
            index.pending.append((removed, added, vectors))
        index.generation = result.generation
        await asyncio.to_thread(index.dense.save, self._path(index.name), result.generation)
        self._maybe_rebuild(index)

    def _maybe_rebuild(self, index: CollectionIndex) -> None:
        target = self._kind_for(len(index.dense))
        if index.rebuild_task is None and (target != index.dense.kind or index.dense.needs_rebuild):
            index.rebuild_task = asyncio.create_task(self._rebuild(index, target))

    async def _rebuild(self, index: CollectionIndex, kind: str) -> None:
        """Build a new dense index in a thread while queries go on against the old one, then swap it in."""
        try:
            log.info("rebuilding %r as %s (%d vectors) in the background", index.name, kind, len(index.dense))
            ids, vectors = await asyncio.to_thread(index.dense.snapshot)
            fresh = await asyncio.to_thread(FaissIndex.build, kind, self.dim, self.params, ids, vectors)
            async with index.lock:
                for removed, added, added_vectors in index.pending:
                    fresh.remove(removed)
                    fresh.add(added, added_vectors)
                index.dense = fresh
                await asyncio.to_thread(fresh.save, self._path(index.name), index.generation)
        except Exception:
            log.exception("background rebuild of %r failed; the old index keeps serving", index.name)
        finally:
            index.pending.clear()
            index.rebuild_task = None

    async def wait_for_rebuilds(self) -> None:
        """Wait for background rebuilds (tests, shutdown)."""
        tasks = [i.rebuild_task for i in self._indexes.values() if i.rebuild_task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    def forget(self, name: str) -> None:
        """Drop a deleted collection's indexes from memory and disk."""
        self._indexes.pop(name, None)
        for suffix in (".faiss", ".json"):
            self._path(name).with_suffix(suffix).unlink(missing_ok=True)

    async def search(
        self,
        query: str,
        query_vector: np.ndarray | None,
        collections: list[str],
        mode: SearchMode,
        k: int,
        generations: dict[str, int],
    ) -> list[Hit]:
        """Search each collection (dense and lexical in parallel), fuse, and merge across collections."""
        per_collection = await asyncio.gather(
            *(self._search_one(name, query, query_vector, mode, k, generations[name]) for name in collections)
        )
        merged = [hit for hits in per_collection for hit in hits]
        merged.sort(key=lambda h: -h.score)
        return merged[:k]

    async def _search_one(
        self, name: str, query: str, vector: np.ndarray | None, mode: SearchMode, k: int, generation: int
    ) -> list[Hit]:
        index = await self.index_for(name, generation)
        candidates = max(k, self.settings.candidates) if mode == "hybrid" else k
        dense_task = (
            asyncio.to_thread(index.dense.search, vector, candidates)
            if mode != "lexical" and vector is not None
            else None
        )
        lexical_task = asyncio.to_thread(index.lexical.search, query, candidates) if mode != "dense" else None
        dense, lexical = await asyncio.gather(_maybe(dense_task), _maybe(lexical_task))
        dense_hits = (
            []
            if dense is None
            else [(float(s), int(i)) for s, i in zip(dense[0][0], dense[1][0], strict=True) if i >= 0]
        )
        lexical_hits = [] if lexical is None else [(float(s), int(i)) for s, i in zip(*lexical, strict=True)]
        if mode == "dense":
            return [Hit(i, name, s, dense_score=s) for s, i in dense_hits]
        if mode == "lexical":
            return [Hit(i, name, s, lexical_score=s) for s, i in lexical_hits]
        return rrf_fuse(name, dense_hits, lexical_hits, self.settings.rrf_k)[:k]


async def _maybe(task: object) -> object:
    return None if task is None else await task  # type: ignore[misc]


def rrf_fuse(
    collection: str, dense: list[tuple[float, int]], lexical: list[tuple[float, int]], rrf_k: int
) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over modes of 1 / (rrf_k + rank)."""
    hits: dict[int, Hit] = {}
    for rank, (score, chunk_id) in enumerate(dense, 1):
        hit = hits.setdefault(chunk_id, Hit(chunk_id, collection, 0.0))
        hit.score += 1.0 / (rrf_k + rank)
        hit.dense_score = score
    for rank, (score, chunk_id) in enumerate(lexical, 1):
        hit = hits.setdefault(chunk_id, Hit(chunk_id, collection, 0.0))
        hit.score += 1.0 / (rrf_k + rank)
        hit.lexical_score = score
    return sorted(hits.values(), key=lambda h: -h.score)

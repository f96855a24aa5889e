"""The read model: per collection, in memory, the generation, the dense and lexical indexes and what a search
result needs (chunk text, title, offsets), kept in step with the store without a query per request.

- Writes made by this process are applied as deltas before the write returns (read-your-writes).
- Writes by other processes arrive through the change feed (PostgreSQL NOTIFY, SQLite data_version, the
  Redis bus) and are applied as deltas from the store's change log; queries go on against the state they
  have meanwhile, and a state's generation moves only once its indexes hold that generation.
- When the feed cannot vouch for what it has seen, the generation is read from the store per request.
- On load, saved index files are brought up to date by the difference of chunk ids (ids are never reused),
  so a restart re-embeds and re-tokenises only what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voicerag.config import SearchMode
from voicerag.documents.changes import ChangeFeed
from voicerag.documents.store import ChunkRows, DocumentStore, WriteResult
from voicerag.errors import InvalidInput, NotFound, UnknownCollection
from voicerag.retrieval.index import DenseBackend, VectorIndex
from voicerag.retrieval.keeper import IndexKeeper
from voicerag.retrieval.lexical import BM25Index
from voicerag.retrieval.snapshot import load_snapshot
from voicerag.retrieval.state import ChunkInfo, CollectionState
from voicerag.retrieval.worker import FusionParams, Hit, RetrievalWorker, SearchJob

log = logging.getLogger(__name__)

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name):
        raise InvalidInput(
            f"collection name {name[:80]!r} is not allowed: use 1-128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


class Retriever:
    """Owns the read model of every collection: loads it, keeps it in step with the store, and searches it;
    its indexes' background rebuilds and saving are the ``keeper``'s (``retrieval/keeper.py``)."""

    def __init__(
        self,
        store: DocumentStore,
        feed: ChangeFeed,
        worker: RetrievalWorker,
        dim: int,
        backend: DenseBackend,
        index_dir: Path,
        text_budget_bytes: int,
        save_interval_s: float,
        observe_sync: Callable[[float], None] | None = None,
    ):
        self.store = store
        self.feed = feed
        self.worker = worker
        self.dim = dim
        self.backend = backend
        self.index_dir = index_dir
        self.text_budget_bytes = text_budget_bytes
        self.text_bytes = 0
        self._states: dict[str, CollectionState] = {}
        self.keeper = IndexKeeper(backend, index_dir, save_interval_s, lambda s: self._states.get(s.name) is s)
        self._load_locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.syncs = 0
        self.sync_lags: deque[float] = deque(maxlen=1000)  # seconds from another process's commit to serving it
        self.observe_sync = observe_sync

    # ---- the read path ----------------------------------------------------------------------------------

    async def current(self, names: list[str]) -> dict[str, CollectionState]:
        """The state of each collection at the newest generation this process knows of (no SQL while the
        change feed is healthy, but on a collection's first use)."""
        healthy = self.feed.healthy
        out: dict[str, CollectionState] = {}
        for name in names:
            state = self._states.get(name)
            if state is None:
                state = await self._load(name)
            elif not healthy:
                await self.sync(name)
                state = self._states.get(name)
                if state is None:
                    raise UnknownCollection(
                        f"collection {name!r} does not exist; create it by ingesting documents into it"
                    )
            out[name] = state
        return out

    def loaded_names(self) -> list[str]:
        return sorted(self._states)

    def sync_stats(self) -> dict[str, float | int | None]:
        """Deltas applied from other processes' writes, and their lag from commit to serving (ms)."""
        lags = sorted(self.sync_lags)

        def at(q: float) -> float | None:
            return round(1000 * lags[min(len(lags) - 1, int(q * len(lags)))], 3) if lags else None

        return {"syncs": self.syncs, "lag_p50_ms": at(0.5), "lag_p95_ms": at(0.95), "lag_max_ms": at(1.0)}

    def memory(self) -> dict[str, Any]:
        """What the read model holds: chunk texts against their budget, and chunks and vectors per collection."""
        return {
            "text_mb": round(self.text_bytes / 2**20, 1),
            "text_budget_mb": round(self.text_budget_bytes / 2**20, 1),
            "collections": {
                name: {"chunks": len(state.chunks), "vectors": len(state.dense)} for name, state in self._states.items()
            },
        }

    def loaded(self, name: str) -> CollectionState | None:
        """The collection's state if it is in memory."""
        return self._states.get(name)

    async def search(
        self,
        query: str,
        vector: np.ndarray | None,
        states: list[CollectionState],
        mode: SearchMode,
        k: int,
        fusion: FusionParams = FusionParams(),
    ) -> SearchJob:
        """Run one search on the worker (batched with whatever else is waiting)."""
        return await self.worker.run(SearchJob(query, vector, [s.target for s in states], mode, k, fusion))

    def idf(self, names: set[str], tokens: set[str]) -> dict[str, float]:
        """Each token's lexical idf, averaged over the loaded collections among ``names`` (none: empty)."""
        tables = [state.lexical.idf(tokens) for name in names if (state := self._states.get(name)) is not None]
        if not tables:
            return {}
        return {token: sum(table[token] for table in tables) / len(tables) for token in tokens}

    async def generation(self, name: str) -> int:
        """The store's generation (a query: for the write path and document listings, not for searches)."""
        generation = await self.store.generation(name)
        if generation is None:
            raise UnknownCollection(f"collection {name!r} does not exist; create it by ingesting documents into it")
        return generation

    # ---- loading ----------------------------------------------------------------------------------------

    async def warm(self) -> list[str]:
        """Load every collection of the store (serve does this before it says ready)."""
        names = list(await self.store.generations())
        for name in names:
            with contextlib.suppress(NotFound):
                await self._load(name)
        return names

    async def _load(self, name: str) -> CollectionState:
        lock = self._load_locks.setdefault(name, asyncio.Lock())
        async with lock:
            state = self._states.get(name)
            if state is not None:
                return state
            generation = await self.generation(name)  # before the rows: the state is never older than its label
            snapshot = await asyncio.to_thread(load_snapshot, self.index_dir / name, self.backend)
            rows = await self.store.chunk_rows(name, None, None if snapshot else self.dim)
            if snapshot is None:
                dense, lexical = await asyncio.to_thread(self._build, name, rows)
                state = CollectionState(name, generation, dense, lexical, {})
                self._add_chunks(state, rows)
                self.keeper.schedule_save(state, at_once=True)
            else:
                state = CollectionState(name, generation, snapshot.dense, snapshot.lexical, {})
                self._add_chunks(state, rows)
                await self._reconcile(state, rows)
            self._states[name] = state
            self.keeper.maybe_rebuild(state)
        # a commit that landed while this loaded may have been read or not, and its notice went by while the
        # collection was not yet in memory (a change feed syncs loaded collections only): catch up once now
        await self.sync(name)
        current = self._states.get(name)
        if current is None:  # deleted meanwhile
            raise UnknownCollection(f"collection {name!r} does not exist; create it by ingesting documents into it")
        return current

    def _build(self, name: str, rows: ChunkRows) -> tuple[VectorIndex, BM25Index]:
        """Both indexes from stored chunks (embeddings are stored; only the texts are tokenised)."""
        kind = self.backend.kind_for(len(rows))
        log.info("building %s index for %r from %d stored chunks", kind, name, len(rows))
        dense = self.backend.build(name, kind, rows.ids, rows.vectors)
        lexical = BM25Index()
        lexical.update(rows.ids, rows.indexed_texts(), np.zeros(0, np.int64))
        return dense, lexical

    async def _reconcile(self, state: CollectionState, rows: ChunkRows) -> None:
        """Bring saved indexes to the stored chunks: remove what is gone, embed nothing, fetch vectors of what
        is new (ids are never reused, so a difference of id sets is the whole delta)."""
        stored = rows.ids
        dense_ids = await asyncio.to_thread(state.dense.ids)
        lexical_ids = state.lexical.ids()
        dense_gone = np.setdiff1d(dense_ids, stored)
        lexical_gone = np.setdiff1d(lexical_ids, stored)
        dense_new = np.setdiff1d(stored, dense_ids)
        lexical_new = np.setdiff1d(stored, lexical_ids)
        fresh = await self.store.chunk_rows(state.name, dense_new.tolist(), self.dim) if len(dense_new) else None
        texts = dict(zip(rows.ids.tolist(), rows.indexed_texts(), strict=True))

        def apply() -> None:
            state.dense.remove(dense_gone)
            if fresh is not None:
                state.dense.add(fresh.ids, fresh.vectors)
            state.lexical.update(lexical_new, [texts[i] for i in lexical_new.tolist()], lexical_gone)

        await asyncio.to_thread(apply)
        if len(dense_gone) or len(dense_new) or len(lexical_gone) or len(lexical_new):
            log.info("index files of %r were behind the store: brought up to date", state.name)
            self.keeper.schedule_save(state)

    # ---- keeping in step --------------------------------------------------------------------------------

    async def apply_write(self, name: str, result: WriteResult) -> None:
        """This process committed ``result``: apply it before the write returns (read-your-writes)."""
        state = self._states.get(name)
        if state is None:
            return  # loaded from the store, write included, on first use
        async with state.sync:
            if state.generation == result.generation - 1:
                await self._apply(state, result.generation, result.removed_chunk_ids, result.added)
                return
        await self.sync(name)

    async def on_change(self, name: str | None, generation: int | None = None) -> None:
        """A change feed's report: sync that collection (unless it already serves ``generation``, as after
        this process's own write; a deletion reports generation 0), or all when ``name`` is None."""
        try:
            if name is None:
                await self.sync_all()
            elif generation is None or (state := self._states.get(name)) is None or state.generation != generation:
                await self.sync(name)
        except Exception as exc:  # the database is away: the next report or request tries again
            log.warning("sync after a change report failed: %s", exc)

    async def sync_all(self) -> None:
        """Compare every loaded collection's generation with the store (one statement) and sync what moved."""
        generations = await self.store.generations()
        moved = [n for n, s in list(self._states.items()) if generations.get(n) != s.generation]
        await asyncio.gather(*(self.sync(n) for n in moved))

    async def sync(self, name: str) -> None:
        """Catch ``name`` up with the store from its change log; a gap in the log reloads it in the background
        while the current state keeps serving."""
        state = self._states.get(name)
        if state is None:
            return
        async with state.sync:
            if self._states.get(name) is not state:
                return
            generation = await self.store.generation(name)
            if generation is None:
                self.forget(name)
                return
            if generation == state.generation:
                return
            changes = await self.store.changes_since(name, state.generation)
            if changes is None:
                self._reload_in_background(state)
                return
            removed = {i for c in changes for i in c.removed}
            added = [i for c in changes for i in c.added if i not in removed]
            rows = await self.store.chunk_rows(name, added, self.dim)
            await self._apply(state, changes[-1].generation, sorted(removed), rows)
            self.syncs += 1
            lag = max(0.0, time.time() - changes[-1].committed_at)
            self.sync_lags.append(lag)
            if self.observe_sync is not None:
                self.observe_sync(lag)

    def _reload_in_background(self, state: CollectionState) -> None:
        if any(t.get_name() == f"reload:{state.name}" for t in self._background):
            return
        task = asyncio.create_task(self._reload(state), name=f"reload:{state.name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload(self, old: CollectionState) -> None:
        """Build the collection afresh from the store while ``old`` keeps serving, then swap and catch up."""
        try:
            generation = await self.generation(old.name)
            rows = await self.store.chunk_rows(old.name, None, self.dim)
            dense, lexical = await asyncio.to_thread(self._build, old.name, rows)
        except NotFound:
            self.forget(old.name)
            return
        except Exception:
            log.exception("reload of %r failed; the previous state keeps serving", old.name)
            return
        fresh = CollectionState(old.name, generation, dense, lexical, {})
        self._add_chunks(fresh, rows)
        self._drop_texts(old)
        self._states[old.name] = fresh
        self.keeper.schedule_save(fresh, at_once=True)
        await self.sync(old.name)  # writes that landed during the reload

    async def _apply(self, state: CollectionState, generation: int, removed_ids: list[int], rows: ChunkRows) -> None:
        """Apply one delta: new chunks become visible with their texts already in place; removed chunks leave
        the indexes before their texts go; the generation moves last."""
        removed = np.asarray([i for i in removed_ids if i in state.chunks], np.int64)
        keep = np.asarray([i not in state.chunks for i in rows.ids.tolist()], bool)
        new = _select(rows, keep) if len(rows) else rows
        self._add_chunks(state, new)

        def update() -> None:
            state.dense.remove(removed)
            if len(new):
                state.dense.add(new.ids, new.vectors)
            state.lexical.update(new.ids, new.indexed_texts(), removed)

        try:
            await asyncio.to_thread(update)
        except Exception:  # the write is committed: rebuild from the store while this state keeps serving
            log.exception("applying generation %d to %r failed; reloading it from the store", generation, state.name)
            self._reload_in_background(state)
            return
        if state.rebuild_task is not None:
            vectors = new.vectors if new.vectors is not None else np.zeros((0, self.dim), np.float32)
            state.pending.append((removed, new.ids, vectors))
        for chunk_id in removed.tolist():
            info = state.chunks.pop(chunk_id, None)
            if info is not None:
                self.text_bytes -= info.size
        state.generation = generation
        self.keeper.maybe_rebuild(state)
        self.keeper.schedule_save(state)

    def _add_chunks(self, state: CollectionState, rows: ChunkRows) -> None:
        """Chunks into the read model, with their texts and unit vectors while the text budget allows."""
        for i, chunk_id in enumerate(rows.ids.tolist()):
            text: str | None = rows.texts[i]
            units = rows.units[i] if rows.units is not None else None
            info = ChunkInfo(rows.doc_ids[i], rows.titles[i], text, rows.starts[i], rows.ends[i], units)
            if self.text_bytes + info.size > self.text_budget_bytes:
                info = ChunkInfo(info.doc_id, info.title, None, info.start, info.end)
            self.text_bytes += info.size
            state.chunks[chunk_id] = info

    def unit_vectors(self, collection: str, chunk_id: int) -> bytes | None:
        """A chunk's packed answer-unit vectors, if the read model holds them."""
        state = self._states.get(collection)
        info = state.chunks.get(chunk_id) if state is not None else None
        return info.units if info is not None else None

    def _drop_texts(self, state: CollectionState) -> None:
        self.text_bytes -= sum(c.size for c in state.chunks.values())

    async def maintain(self) -> list[dict[str, Any]]:
        """For each loaded collection: compact the lexical index's removed slots, and rebuild the dense index
        when its kind no longer fits its size or its tombstones pass a fifth (in the background, serving on);
        what was done and why."""
        return [await self.keeper.maintain(state) for state in list(self._states.values())]

    async def flush(self) -> None:
        """Save every collection with unsaved changes now, and wait for background work (shutdown, tests)."""
        await self.wait_for_rebuilds()
        for state in list(self._states.values()):
            await self.keeper.save_now(state)

    async def wait_for_rebuilds(self) -> None:
        """Wait for background rebuilds and reloads (tests, shutdown)."""
        tasks = [s.rebuild_task for s in self._states.values() if s.rebuild_task is not None]
        await asyncio.gather(*tasks, *self._background, return_exceptions=True)

    async def drop(self, name: str) -> None:
        """This process deleted the collection: forget it and drop what its backend keeps elsewhere."""
        self.forget(name)
        await self.backend.drop(name)

    def forget(self, name: str) -> None:
        """Drop a deleted collection from memory and disk."""
        state = self._states.pop(name, None)
        if state is not None:
            self._drop_texts(state)
        self.keeper.forget(name, state)


def _select(rows: ChunkRows, keep: np.ndarray) -> ChunkRows:
    picked = np.flatnonzero(keep).tolist()
    return ChunkRows(
        ids=rows.ids[keep],
        vectors=None if rows.vectors is None else rows.vectors[keep],
        doc_ids=[rows.doc_ids[i] for i in picked],
        titles=[rows.titles[i] for i in picked],
        texts=[rows.texts[i] for i in picked],
        starts=[rows.starts[i] for i in picked],
        ends=[rows.ends[i] for i in picked],
        units=None if rows.units is None else [rows.units[i] for i in picked],
    )


__all__ = ["ChunkInfo", "CollectionState", "Hit", "Retriever", "check_collection_name"]

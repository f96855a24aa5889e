"""The indexes' lifecycle beside the read path: a collection's dense index rebuilt in the background when its
kind no longer fits its size (or its tombstones pass a fifth) while queries go on against the old one, and its
indexes saved to disk at a bounded rate (a restart catches up by id difference)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicerag.retrieval.index import DenseBackend, blocking_io
from voicerag.retrieval.snapshot import save_snapshot
from voicerag.retrieval.state import CollectionState

log = logging.getLogger(__name__)


class IndexKeeper:
    """Rebuilds and saves the indexes of the collections the read model serves. ``is_serving(state)`` says
    whether ``state`` is still the one served for its collection (a replaced or forgotten one is not saved)."""

    def __init__(
        self,
        backend: DenseBackend,
        index_dir: Path,
        save_interval_s: float,
        is_serving: Callable[[CollectionState], bool],
    ):
        self.backend = backend
        self.index_dir = index_dir
        self.save_interval_s = save_interval_s
        self.is_serving = is_serving

    # ---- dense index kind -------------------------------------------------------------------------------

    def maybe_rebuild(self, state: CollectionState) -> None:
        """Start a background rebuild when the dense index's kind no longer fits its size or it needs one."""
        if blocking_io(state.dense):  # a shared index (pgvector) is never rebuilt by a replica
            return
        target = self.backend.kind_for(len(state.dense))
        if state.rebuild_task is None and (target != state.dense.kind or state.dense.needs_rebuild):
            state.rebuild_task = asyncio.create_task(self._rebuild(state, target))

    async def _rebuild(self, state: CollectionState, kind: str) -> None:
        """Build a new dense index in a thread while queries go on against the old one, then swap it in."""
        try:
            log.info("rebuilding %r as %s (%d vectors) in the background", state.name, kind, len(state.dense))
            ids, vectors = await asyncio.to_thread(state.dense.snapshot)
            fresh = await asyncio.to_thread(self.backend.build, state.name, kind, ids, vectors)
            async with state.sync:
                for removed, added, added_vectors in state.pending:
                    fresh.remove(removed)
                    fresh.add(added, added_vectors)
                state.dense = fresh
            self.schedule_save(state)
        except Exception:
            log.exception("background rebuild of %r failed; the old index keeps serving", state.name)
        finally:
            state.pending.clear()
            state.rebuild_task = None

    async def maintain(self, state: CollectionState) -> dict[str, Any]:
        """Compact the lexical index's removed slots, and rebuild the dense index when its kind no longer fits
        its size or its tombstones pass a fifth (in the background, serving on); what was done and why."""
        entry: dict[str, Any] = {"collection": state.name, "chunks": len(state.chunks), "actions": []}
        dead = await asyncio.to_thread(state.lexical.compact)
        if dead:
            entry["actions"].append(f"lexical index compacted: {dead} removed chunks dropped")
        if not blocking_io(state.dense):
            target = self.backend.kind_for(len(state.chunks))
            if target != state.dense.kind or state.dense.needs_rebuild:
                reason = "its tombstones pass a fifth" if state.dense.needs_rebuild else f"{target} fits its size"
                entry["actions"].append(f"dense index ({state.dense.kind}) rebuilding as {target}: {reason}")
                self.maybe_rebuild(state)
        if dead:
            self.schedule_save(state)
        return entry

    # ---- persistence ------------------------------------------------------------------------------------

    def schedule_save(self, state: CollectionState, at_once: bool = False) -> None:
        """Save the indexes at most once per ``save_interval_s`` (a restart catches up by id difference), and
        under steady writes no more than a tenth of the time: a 100k-vector index takes seconds to save."""
        state.dirty = True
        if state.save_task is None:
            state.save_task = asyncio.create_task(self._save_loop(state, 0.0 if at_once else self.save_interval_s))

    async def _save_loop(self, state: CollectionState, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            while state.dirty and self.is_serving(state):
                state.dirty = False
                started = time.perf_counter()
                await asyncio.to_thread(self._save, state)
                if state.dirty:  # written to meanwhile: not back to back, or saving would never stop
                    await asyncio.sleep(max(self.save_interval_s, 9 * (time.perf_counter() - started)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("saving the indexes of %r failed; they are rebuilt from the store on restart", state.name)
        finally:
            state.save_task = None

    async def save_now(self, state: CollectionState) -> None:
        """Save the collection's unsaved changes now, instead of when its save falls due (shutdown, tests)."""
        if state.save_task is not None:
            state.save_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.save_task
        if state.dirty:
            state.dirty = False
            await asyncio.to_thread(self._save, state)

    def _save(self, state: CollectionState) -> None:
        save_snapshot(self.index_dir / state.name, state.generation, state.dense, state.lexical)

    def forget(self, name: str, state: CollectionState | None) -> None:
        """A deleted collection: its pending save cancelled, its files gone."""
        if state is not None and state.save_task is not None:
            state.save_task.cancel()
        shutil.rmtree(self.index_dir / name, ignore_errors=True)

"""One collection in the read model: its generation, its dense and lexical indexes, and what a search result
shows of each chunk."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from voicerag.retrieval.index import VectorIndex
from voicerag.retrieval.lexical import BM25Index
from voicerag.retrieval.worker import Target


@dataclass(frozen=True)
class ChunkInfo:
    """What a search result shows of a chunk. ``text`` is None when it is over the memory budget."""

    doc_id: str
    title: str
    text: str | None
    start: int
    end: int
    units: bytes | None = None  # its answer units' vectors, packed; None over the budget or when not stored

    @property
    def size(self) -> int:
        """Bytes it holds against the read model's text budget."""
        return (len(self.text) if self.text is not None else 0) + (len(self.units) if self.units is not None else 0)


@dataclass
class CollectionState:
    """One collection in memory: its indexes and chunks at ``generation``."""

    name: str
    generation: int
    dense: VectorIndex
    lexical: BM25Index
    chunks: dict[int, ChunkInfo]
    sync: asyncio.Lock = field(default_factory=asyncio.Lock)  # one writer or refresher at a time
    rebuild_task: asyncio.Task[None] | None = None
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    save_task: asyncio.Task[None] | None = None
    dirty: bool = False

    @property
    def target(self) -> Target:
        return Target(self.name, self.dense, self.lexical)

"""Ingest: skip unchanged documents; chunk, embed and write changed ones in bounded batches (one transaction
each), applying each batch to the read model as it commits.

Memory stays bounded by the batch (``ingest_batch_docs`` documents' embeddings), progress moves batch by
batch, and a crash loses at most the batch in flight: running the same ingest again skips what was written
(its content hash is stored) and completes the rest, with no duplicates."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voicerag.answer.units import answer_units
from voicerag.config import Settings
from voicerag.documents.chunking import chunk_text, indexed_text
from voicerag.documents.loaders import Document
from voicerag.documents.store import DocumentStore, PreparedChunk, PreparedDocument, content_hash
from voicerag.errors import InvalidInput
from voicerag.retrieval.quantize import pack_vectors
from voicerag.retrieval.search import Retriever, check_collection_name
from voicerag.validation import clean_document_text, plain_text

Progress = Callable[[int, int], object]  # (chunks done, chunks in all); may return an awaitable
EmbedWithSpans = Callable[[list[str], list[list[tuple[int, int]]]], Awaitable[tuple[np.ndarray, list[np.ndarray]]]]


@dataclass
class IngestReport:
    collection: str
    documents: int
    added: int
    updated: int
    unchanged: int
    chunks: int
    seconds: float
    generation: int

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return self.__dict__ | {"docs_per_s": round(self.docs_per_s, 2), "chunks_per_s": round(self.chunks_per_s, 2)}


async def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        result = progress(done, total)
        if inspect.isawaitable(result):
            await result


class Ingestor:
    """Turns documents into stored, indexed chunks. Validates everything before it writes anything."""

    def __init__(self, settings: Settings, store: DocumentStore, retriever: Retriever, embed: EmbedWithSpans):
        self.settings = settings
        self.store = store
        self.retriever = retriever
        self.embed = embed
        self.batch_docs = settings.ingest_batch_docs

    def validate(self, collection: str, docs: list[Document]) -> list[Document]:
        """The documents as they would be stored (last of each id), or a 4xx naming the first bad one."""
        check_collection_name(collection)
        return self._validate(docs)

    def _validate(self, docs: list[Document]) -> list[Document]:
        if len(docs) > self.settings.max_documents_per_request * 1000:
            raise InvalidInput(f"too many documents in one call ({len(docs)})")
        latest: dict[str, Document] = {}
        for doc in docs:
            if not str(doc.id).strip():
                raise InvalidInput("every document needs a non-empty id")
            if len(doc.id) > 1024:
                raise InvalidInput(f"document id {doc.id[:60]!r}... is longer than 1024 characters")
            if not doc.text or not doc.text.strip():
                raise InvalidInput(f"document {doc.id!r} has no text")
            plain_text(doc.id, "a document id")
            doc = Document(
                doc.id,
                clean_document_text(doc.text, f"document {doc.id!r}"),
                clean_document_text(doc.title, f"the title of {doc.id!r}"),
                doc.metadata,
            )
            latest[doc.id] = doc
        return list(latest.values())

    async def ingest(self, collection: str, docs: list[Document], progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        check_collection_name(collection)
        docs = self._validate(docs)
        generation = await self.store.ensure_collection(collection)
        known = await self.store.document_hashes(collection, [d.id for d in docs])
        changed = [(d, h) for d in docs if known.get(d.id) != (h := content_hash(d))]
        spans = [chunk_text(d.text, self.settings.chunk_words, self.settings.chunk_overlap_words) for d, _ in changed]
        total = sum(len(s) for s in spans)
        done = 0
        await _report(progress, 0, total)
        if changed:  # in memory before the first write, so every batch applies as a delta
            await self.retriever.current([collection])
        for start in range(0, len(changed), self.batch_docs):
            end = start + self.batch_docs
            batch = list(zip(changed[start:end], spans[start:end], strict=True))
            prepared = await self._prepare(batch)
            result = await self.store.write_documents(collection, prepared)
            await self.retriever.apply_write(collection, result)
            generation = result.generation
            done += len(result.added)
            await _report(progress, done, total)
        updated = sum(1 for d, _ in changed if d.id in known)
        return IngestReport(
            collection=collection,
            documents=len(docs),
            added=len(changed) - updated,
            updated=updated,
            unchanged=len(docs) - len(changed),
            chunks=total,
            seconds=time.perf_counter() - started,
            generation=generation,
        )

    async def _prepare(self, batch: list[tuple[tuple[Document, str], list[Any]]]) -> list[PreparedDocument]:
        """Embed one batch's chunks (in model-sized steps), each with its answer units' vectors from the same
        pass, and pair them with their documents."""
        texts, unit_spans = [], []
        for (doc, _), doc_spans in batch:
            for span in doc_spans:
                text = indexed_text(doc.title, span.text)
                offset = len(text) - len(span.text)  # the title before the chunk's own text
                texts.append(text)
                unit_spans.append([(u.start + offset, u.end + offset) for u in answer_units(span.text)])
        vectors: list[Any] = []
        units: list[bytes] = []
        step = max(self.settings.embed_batch_size * 4, 64)
        for i in range(0, len(texts), step):
            chunk_vectors, pooled = await self.embed(texts[i : i + step], unit_spans[i : i + step])
            vectors.extend(chunk_vectors)
            units.extend(pack_vectors(p) for p in pooled)
        prepared, cursor = [], 0
        for (doc, digest), doc_spans in batch:
            chunks = [
                PreparedChunk(s.text, s.start, s.end, vectors[cursor + j], units[cursor + j])
                for j, s in enumerate(doc_spans)
            ]
            cursor += len(doc_spans)
            prepared.append(PreparedDocument(doc, digest, chunks))
        return prepared

    async def delete_documents(self, collection: str, doc_ids: list[str]) -> int:
        """Delete documents from the store and both indexes; returns the new generation."""
        await self.retriever.current([collection])
        result = await self.store.delete_documents(collection, doc_ids)
        await self.retriever.apply_write(collection, result)
        return result.generation

    async def delete_collection(self, collection: str) -> None:
        await self.store.delete_collection(collection)
        await self.retriever.drop(collection)

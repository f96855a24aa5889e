"""VoiceRAG: the one composition root. Builds every part from Settings; open() / aclose()."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from voicerag.answer.extractive import ExtractiveGenerator
from voicerag.answer.llm import OpenAIChatGenerator
from voicerag.answer.types import Answer, Generator, Source
from voicerag.cache import build_cache
from voicerag.cache.bus import InvalidationBus
from voicerag.cache.tiered import TieredCache
from voicerag.config import SearchMode, Settings, load_settings
from voicerag.documents.ingest import Ingestor, IngestReport, Progress
from voicerag.documents.loaders import Document, load_paths
from voicerag.documents.store import SQLDocumentStore
from voicerag.metrics import Metrics
from voicerag.pipeline import Pipeline
from voicerag.pools import Pools
from voicerag.retrieval.embedder import Embedder, create_embedder
from voicerag.retrieval.search import Retriever
from voicerag.speech.service import SpeechService
from voicerag.speech.voice import VoiceAgent

log = logging.getLogger(__name__)


class VoiceRAG:
    """Documents in, grounded answers out. Create with ``await VoiceRAG.open(settings)``."""

    def __init__(
        self,
        settings: Settings,
        pools: Pools,
        store: SQLDocumentStore,
        embedder: Embedder,
        retriever: Retriever,
        cache: TieredCache,
        metrics: Metrics,
        pipeline: Pipeline,
        ingestor: Ingestor,
    ):
        self.settings = settings
        self.pools = pools
        self.store = store
        self.embedder = embedder
        self.retriever = retriever
        self.cache = cache
        self.metrics = metrics
        self.pipeline = pipeline
        self.ingestor = ingestor
        self.speech = SpeechService(settings, pools, cache, metrics)
        self.voice = VoiceAgent(pipeline, self.speech)
        self.instance_id = uuid.uuid4().hex[:12]
        self.bus: InvalidationBus | None = None

    @classmethod
    async def open(cls, settings: Settings | None = None) -> VoiceRAG:
        """Build pools, store (schema created if missing), models, indexes and cache from ``settings``."""
        settings = settings or load_settings()
        logging.getLogger("voicerag").setLevel(settings.log_level)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        pools = Pools.create(settings)
        try:
            store = SQLDocumentStore(pools.engine)
            await store.create_schema()
            cpu_limit = asyncio.Semaphore(settings.cpu_concurrency)
            embedder = await asyncio.to_thread(create_embedder, settings, pools, cpu_limit)
            retriever = Retriever(settings, store, embedder.dim)
            cache = build_cache(settings, pools)
            metrics = Metrics()
            extractive = ExtractiveGenerator(settings.answer_sentences)
            generator: Generator = OpenAIChatGenerator(settings, pools) if settings.generator == "llm" else extractive
            pipeline = Pipeline(settings, store, embedder, retriever, cache, metrics, generator, extractive)
            ingestor = Ingestor(settings, store, retriever, pipeline.embed_texts)
        except BaseException:
            await pools.aclose()
            raise
        rag = cls(settings, pools, store, embedder, retriever, cache, metrics, pipeline, ingestor)
        if pools.redis is not None:
            rag.bus = InvalidationBus(pools.redis, rag.instance_id, rag._on_remote_write)
            rag.bus.start()
        return rag

    async def aclose(self) -> None:
        if self.bus is not None:
            await self.bus.aclose()
        await self.retriever.wait_for_rebuilds()
        await self.cache.flush()
        await self.pools.aclose()

    async def __aenter__(self) -> VoiceRAG:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- documents --------------------------------------------------------------------------------------

    async def _after_write(self, collection: str, generation: int | None) -> None:
        await self.cache.invalidate(tag=f"collection:{collection}", policy="search")
        await self.cache.invalidate(tag=f"collection:{collection}", policy="answer")
        if self.bus is not None and generation is not None:
            await self.bus.publish(collection, generation)

    async def _on_remote_write(self, message: dict[str, Any]) -> None:
        """Another replica wrote: drop this process's memory entries for the collection, refresh its index."""
        collection = message["collection"]
        memory = [t for t in self.cache.tiers if t.name == "memory"]
        for tier in memory:
            await tier.clear(tag=f"collection:{collection}")
        if message.get("generation") is not None:
            try:
                await self.retriever.index_for(collection)
            except Exception as exc:  # deleted meanwhile, or the database is away: the next request retries
                log.debug("refresh of %r after a remote write failed: %s", collection, exc)

    async def ingest(
        self, collection: str, documents: list[Document], progress: Progress | None = None
    ) -> IngestReport:
        """Add or replace documents (unchanged ones are skipped) in ``collection``, creating it if needed."""
        report = await self.ingestor.ingest(collection, documents, progress)
        if report.added or report.updated:
            await self._after_write(collection, report.generation)
        return report

    async def ingest_paths(self, collection: str, paths: list[Path], progress: Progress | None = None) -> IngestReport:
        """Load files (a document's id is its path relative to the argument) and ingest them."""
        documents = await asyncio.to_thread(load_paths, paths)
        return await self.ingest(collection, documents, progress)

    async def delete_documents(self, collection: str, doc_ids: list[str]) -> int:
        generation = await self.ingestor.delete_documents(collection, doc_ids)
        await self._after_write(collection, generation)
        return generation

    async def delete_collection(self, collection: str) -> None:
        await self.ingestor.delete_collection(collection)
        await self._after_write(collection, 0)

    async def list_collections(self) -> list[dict[str, Any]]:
        return await self.store.list_collections()

    async def list_documents(self, collection: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        await self.retriever.generation(collection)
        return await self.store.list_documents(collection, limit, offset)

    async def get_document(self, collection: str, doc_id: str) -> dict[str, Any]:
        await self.retriever.generation(collection)
        return await self.store.get_document(collection, doc_id)

    # ---- questions --------------------------------------------------------------------------------------

    async def search(
        self, query: str, collections: list[str], mode: SearchMode | None = None, k: int | None = None
    ) -> list[Source]:
        return await self.pipeline.search(query, collections, mode, k)

    async def ask(
        self, question: str, collections: list[str], mode: SearchMode | None = None, k: int | None = None
    ) -> Answer:
        return await self.pipeline.ask(question, collections, mode, k)

    def ask_stream(
        self, question: str, collections: list[str], mode: SearchMode | None = None, k: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        return self.pipeline.ask_stream(question, collections, mode, k)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self.pipeline.embed_texts(texts)

    async def health(self) -> dict[str, Any]:
        return await self.pools.health()

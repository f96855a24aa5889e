"""VoiceRAG: the one composition root. Builds every part from Settings; open() / aclose()."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np

from voicerag import instances
from voicerag.answer.extractive import ExtractiveGenerator
from voicerag.answer.llm import OpenAIChatGenerator
from voicerag.answer.types import Answer, Generator, Source
from voicerag.auth import ApiKeys
from voicerag.cache import build_cache
from voicerag.cache.bus import InvalidationBus
from voicerag.cache.tiered import TieredCache
from voicerag.config import SearchMode, Settings, load_settings
from voicerag.documents.changes import create_feed
from voicerag.documents.loaders import Document
from voicerag.documents.store import SQLDocumentStore
from voicerag.events import AnswerEvent
from voicerag.ingestion import Ingestor, IngestReport, Progress
from voicerag.jobs.store import Job, JobStore
from voicerag.metrics import Metrics
from voicerag.operations.alerts import AlertMonitor
from voicerag.operations.live_config import LiveConfig
from voicerag.pipeline import Pipeline
from voicerag.pools import Pools
from voicerag.retrieval.embedder import Embedder, create_embedder
from voicerag.retrieval.faiss_index import FaissBackend
from voicerag.retrieval.index import DenseBackend, IndexParams
from voicerag.retrieval.search import Retriever, check_collection_name
from voicerag.retrieval.worker import RetrievalWorker
from voicerag.speech.service import SpeechService
from voicerag.voice import VoiceAgent

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
        self.ready = False
        self.store_warnings: list[str] = []
        self._registration: Path | None = None
        self.keys = ApiKeys(pools.engine, settings.api_key_cache_s)
        self.jobs = JobStore(pools.engine)
        self._sync_task: asyncio.Task[None] | None = None
        self.live = LiveConfig(self)
        self.alerts = AlertMonitor(self)

    @classmethod
    async def open(cls, settings: Settings | None = None, role: str = "library") -> VoiceRAG:
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
            metrics = Metrics()
            retriever = await build_retriever(
                settings, pools, store, embedder, metrics.replica_sync.labels(metrics.worker).observe
            )
            cache = build_cache(settings, pools)
            extractive = ExtractiveGenerator(settings.answer_sentences, min_confidence=settings.answer_min_confidence)
            generator: Generator = OpenAIChatGenerator(settings, pools) if settings.generator == "llm" else extractive
            pipeline = Pipeline(settings, store, embedder, retriever, cache, metrics, generator, extractive)
            ingestor = Ingestor(settings, store, retriever, embedder.embed_with_spans)
        except BaseException:
            await pools.aclose()
            raise
        rag = cls(settings, pools, store, embedder, retriever, cache, metrics, pipeline, ingestor)
        names = list(await store.generations())  # names only: one light statement at start-up
        rag.store_warnings = instances.warn_about_others(settings.resolved_database_url, names)
        rag._registration = instances.register(settings.resolved_database_url, role, names)
        await retriever.feed.start(retriever.on_change)
        rag._sync_task = asyncio.create_task(rag._sync_periodically())
        if pools.redis is not None:
            rag.bus = InvalidationBus(pools.redis, rag.instance_id, rag._on_bus_message)
            await rag.bus.start()
            await rag.live.load_shared()
        return rag

    async def warm(self) -> None:
        """Load every collection's read model (``serve`` does this before /readyz says ready)."""
        await self.retriever.warm()
        self.ready = True

    async def _sync_periodically(self) -> None:
        """A safety net under the change notices: compare generations with the store now and then."""
        while True:
            await asyncio.sleep(self.settings.sync_interval_s)
            await self.retriever.on_change(None)

    async def aclose(self) -> None:
        if self._registration is not None:
            self._registration.unlink(missing_ok=True)
        if self._sync_task is not None:
            self._sync_task.cancel()
        await self.alerts.aclose()
        if self.bus is not None:
            await self.bus.aclose()
        await self.retriever.feed.aclose()
        await self.retriever.flush()
        await self.cache.flush()
        await self.pools.aclose()

    async def __aenter__(self) -> VoiceRAG:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- documents --------------------------------------------------------------------------------------

    async def _after_write(self, collection: str, generation: int | None) -> None:
        """The write is committed: tell the caches and the other replicas. Cached searches and answers are keyed
        by the collection's generation, so none from before the write can be served after it; dropping them
        frees their space, and if the cache cannot be reached now that waits for their expiry (the write has
        happened and its caller is told so)."""
        try:
            await self.cache.invalidate(tag=f"collection:{collection}", policy="search")
            await self.cache.invalidate(tag=f"collection:{collection}", policy="answer")
        except Exception as exc:
            log.warning("dropping the cached answers of %r after a write failed: %s", collection, exc)
        if self.bus is not None and generation is not None:
            await self.bus.publish(collection, generation)

    async def _on_bus_message(self, message: dict[str, Any]) -> None:
        """Another replica changed settings (apply them here) or wrote (catch the collection's read model up;
        cache keys carry the generation)."""
        if message.get("kind") == "config":
            self.live.on_remote(message)
        else:
            await self.retriever.on_change(message["collection"], message.get("generation"))

    async def ingest(
        self, collection: str, documents: list[Document], progress: Progress | None = None
    ) -> IngestReport:
        """Add or replace documents (unchanged ones are skipped) in ``collection``, creating it if needed."""
        report = await self.ingestor.ingest(collection, documents, progress)
        if report.added or report.updated:
            await self._after_write(collection, report.generation)
        return report

    async def enqueue_ingest(
        self, collection: str, documents: list[Document], errors: list[dict[str, str]] | None = None
    ) -> Job:
        """Queue an ingest for ``voicerag worker`` (checked now, run later); ``errors`` are files that could not
        be read, recorded on the job."""
        from voicerag.jobs.queue import enqueue, redis_settings

        redis_settings(self.settings.redis_url)  # refuse before storing anything when there is no queue
        documents = self.ingestor.validate(collection, documents)
        job = await self.jobs.create(collection, documents, errors or [])
        if documents:
            try:
                await enqueue(self.settings.redis_url, job.id)
            except Exception as exc:
                await self.jobs.update(job.id, status="failed", errors=[*job.errors, {"file": "*", "detail": str(exc)}])
                raise
        return job

    async def delete_documents(self, collection: str, doc_ids: list[str]) -> int:
        generation = await self.ingestor.delete_documents(collection, doc_ids)
        await self._after_write(collection, generation)
        return generation

    async def delete_collection(self, collection: str) -> None:
        await self.ingestor.delete_collection(collection)
        await self._after_write(collection, 0)

    async def create_collection(self, collection: str) -> int:
        """An empty collection (nothing happens when it exists); its generation."""
        return await self.store.ensure_collection(check_collection_name(collection))

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
        self,
        query: str,
        collections: list[str],
        mode: SearchMode | None = None,
        k: int | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Source]:
        """Top ``k`` sources; ``timings`` receives each stage's milliseconds."""
        return await self.pipeline.search(query, collections, mode, k, timings)

    async def ask(
        self, question: str, collections: list[str], mode: SearchMode | None = None, k: int | None = None
    ) -> Answer:
        return await self.pipeline.ask(question, collections, mode, k)

    def ask_stream(
        self, question: str, collections: list[str], mode: SearchMode | None = None, k: int | None = None
    ) -> AsyncIterator[AnswerEvent]:
        return self.pipeline.ask_stream(question, collections, mode, k)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self.pipeline.embed_texts(texts)

    async def maintain(self) -> dict[str, Any]:
        """Purge expired cache entries, refresh the store's statistics, compact or rebuild indexes, pool advice."""
        from voicerag.operations.maintenance import run_maintenance

        return await run_maintenance(self)

    async def health(self) -> dict[str, Any]:
        """Each pool with a real round trip, and whether the store's schema is this release's."""
        checks = await self.pools.health()
        if checks["database"]["ok"]:
            try:
                checks["schema"] = await self.store.schema_revision()
            except Exception as exc:  # report, don't raise: /readyz shows it
                checks["schema"] = {"ok": False, "error": str(exc)[:200]}
        checks["indexes"] = {"ok": self.ready, "loaded": self.retriever.loaded_names()} | self.retriever.sync_stats()
        return checks


async def build_retriever(
    settings: Settings, pools: Pools, store: SQLDocumentStore, embedder: Embedder, observe_sync: Callable[[float], None]
) -> Retriever:
    """The read model with its change feed, dense backend and batching worker, from Settings."""
    s = settings
    worker = RetrievalWorker(embedder.embed, embedder.embed_sync, s.retrieval_workers, s.retrieval_max_batch)
    backend: DenseBackend
    params = IndexParams(s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search, s.ivf_nprobe)
    if s.vector_backend == "pgvector":
        from voicerag.retrieval.pgvector_index import PgVectorBackend, create_vector_schema

        await create_vector_schema(pools.engine, embedder.dim, s.hnsw_m, s.hnsw_ef_construction)
        backend = PgVectorBackend(pools.engine, asyncio.get_running_loop(), embedder.dim, params)
    else:
        backend = FaissBackend(embedder.dim, params, s.index_type, s.hnsw_threshold, s.index_memory_budget_mb)
    return Retriever(
        store,
        create_feed(s.resolved_database_url, s.sqlite_poll_interval_ms / 1000),
        worker,
        embedder.dim,
        backend,
        s.data_dir / "indexes",
        int(s.read_model_text_mb * 1024 * 1024),
        s.index_save_interval_s,
        observe_sync,
    )

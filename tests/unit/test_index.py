from pathlib import Path

import numpy as np
import pytest

from voicerag.retrieval.index import FaissIndex, IndexParams, choose_kind
from voicerag.retrieval.lexical import LexicalIndex
from voicerag.retrieval.search import rrf_fuse


def structured_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Low-rank Gaussian plus noise, normalised: closer to real embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((48, dim))
    x = rng.standard_normal((n, 48)) @ basis + 0.3 * rng.standard_normal((n, dim)) * np.sqrt(48)
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


PARAMS = IndexParams(hnsw_m=32, hnsw_ef_construction=100, hnsw_ef_search=128, ivf_nprobe=48)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = structured_vectors(4000)
    queries = structured_vectors(100, seed=1)
    ids = np.arange(1000, 5000, dtype=np.int64)
    return ids, vectors, queries


def recall_vs_flat(kind: str, ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray) -> float:
    flat = FaissIndex.build("flat", 384, PARAMS, ids, vectors)
    other = FaissIndex.build(kind, 384, PARAMS, ids, vectors)
    _, truth = flat.search(queries, 10)
    _, found = other.search(queries, 10)
    return float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)]))


@pytest.mark.parametrize(("kind", "minimum"), [("flat", 1.0), ("hnsw", 0.95), ("ivf", 0.85)])
def test_recall_against_flat(kind: str, minimum: float, data) -> None:
    assert recall_vs_flat(kind, *data) >= minimum


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_delete_removes_from_results(kind: str, data) -> None:
    ids, vectors, _ = data
    index = FaissIndex.build(kind, 384, PARAMS, ids, vectors)
    _, before = index.search(vectors[:5], 1)
    assert list(before[:, 0]) == list(ids[:5])
    index.remove(ids[:5])
    _, after = index.search(vectors[:5], 10)
    assert not set(after.ravel()) & set(ids[:5])
    assert len(index) == len(ids) - 5


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_and_load(kind: str, data, tmp_path: Path) -> None:
    ids, vectors, queries = data
    index = FaissIndex.build(kind, 384, PARAMS, ids, vectors)
    index.remove(ids[:3])
    index.save(tmp_path / "c.faiss", generation=7)
    assert FaissIndex.load(tmp_path / "c.faiss", 8, 384, PARAMS) is None  # stale generation
    loaded = FaissIndex.load(tmp_path / "c.faiss", 7, 384, PARAMS)
    assert loaded is not None and loaded.kind == kind and len(loaded) == len(ids) - 3
    np.testing.assert_array_equal(loaded.search(queries, 5)[1], index.search(queries, 5)[1])


def test_hnsw_rebuild_snapshot_drops_tombstones(data) -> None:
    ids, vectors, _ = data
    index = FaissIndex.build("hnsw", 384, PARAMS, ids[:500], vectors[:500])
    index.remove(ids[:100])
    snap_ids, snap_vectors = index.snapshot()
    assert len(snap_ids) == 400 and not set(snap_ids) & set(ids[:100])
    np.testing.assert_allclose(snap_vectors[0], vectors[100], atol=1e-6)


def test_choose_kind() -> None:
    assert choose_kind("auto", 5_000, 384, 20_000, 4096, 32) == "flat"
    assert choose_kind("auto", 50_000, 384, 20_000, 4096, 32) == "hnsw"
    assert choose_kind("auto", 5_000_000, 384, 20_000, 1024, 32) == "ivf"
    assert choose_kind("ivf", 10, 384, 20_000, 4096, 32) == "ivf"


def test_lexical_index_updates_and_ranks() -> None:
    index = LexicalIndex()
    index.update(np.array([1, 2, 3]), ["the running dogs", "cats sleep all day", "dogs run in parks"], np.array([]))
    scores, ids = index.search("dog running", 10)
    assert set(ids) == {1, 3} and scores[0] >= scores[-1] > 0
    index.update(np.array([]), [], np.array([1]))
    _, ids = index.search("dog running", 10)
    assert list(ids) == [3]


def test_rrf_prefers_agreement() -> None:
    hits = rrf_fuse("c", [(0.9, 1), (0.8, 2), (0.7, 3)], [(5.0, 3), (4.0, 4)], 60)
    assert hits[0].chunk_id == 3  # in both lists
    assert {h.chunk_id for h in hits} == {1, 2, 3, 4}

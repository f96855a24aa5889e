"""The contract every ``VectorIndex`` backend passes. A backend's test module subclasses ``VectorIndexContract``
and provides ``make(ids, vectors)``; every test below then runs against it (the pattern of Haystack 2.x's
``haystack/testing/document_store.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicerag.retrieval.index import VectorIndex


def structured_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    """Low-rank Gaussian plus noise, normalised: closer to real embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((48, dim))
    x = rng.standard_normal((n, 48)) @ basis + 0.3 * rng.standard_normal((n, dim)) * np.sqrt(48)
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    return ids[np.argsort(-scores, axis=1)[:, :k]]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4,000 vectors under ids 1000..4999 and 100 queries."""
    return np.arange(1000, 5000, dtype=np.int64), structured_vectors(4000), structured_vectors(100, seed=1)


class VectorIndexContract:
    """Subclass, set ``min_recall`` and implement ``make``."""

    min_recall = 1.0

    def make(self, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        raise NotImplementedError

    def reload(self, index: VectorIndex, path: Path) -> VectorIndex:
        raise NotImplementedError

    def test_recall_against_exact_search(self, data) -> None:
        ids, vectors, queries = data
        _, found = self.make(ids, vectors).search(queries, 10)
        truth = exact_top(vectors, ids, queries, 10)
        recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
        assert recall >= self.min_recall

    def test_scores_are_inner_products_in_descending_order(self, data) -> None:
        ids, vectors, queries = data
        scores, found = self.make(ids, vectors).search(queries[:5], 5)
        lookup = dict(zip(ids.tolist(), vectors, strict=True))
        for query, row_scores, row_ids in zip(queries[:5], scores, found, strict=True):
            assert list(row_scores) == sorted(row_scores, reverse=True)
            exact = [float(query @ lookup[int(i)]) for i in row_ids]  # every returned id is one that was added
            np.testing.assert_allclose(row_scores, exact, rtol=1e-3, atol=1e-3)
        assert set(found.ravel()) <= set(ids.tolist())

    def test_removed_ids_never_come_back_and_len_counts_live_ones(self, data) -> None:
        ids, vectors, _ = data
        index = self.make(ids, vectors)
        index.remove(ids[:5])
        _, after = index.search(vectors[:5], 10)
        assert not set(after.ravel()) & set(ids[:5].tolist())
        assert len(index) == len(ids) - 5
        assert set(index.ids().tolist()) == set(ids[5:].tolist())

    def test_added_vectors_are_found(self, data) -> None:
        ids, vectors, _ = data
        index = self.make(ids[:3000], vectors[:3000])
        index.add(ids[3000:], vectors[3000:])
        _, found = index.search(vectors[3990:], 1)
        assert list(found[:, 0]) == list(ids[3990:])

    def test_empty_index_and_k_larger_than_size(self) -> None:
        index = self.make(np.zeros(0, np.int64), np.zeros((0, 384), np.float32))
        scores, found = index.search(structured_vectors(2), 5)
        assert found.shape[0] == 2 and (found.size == 0 or (found == -1).all())
        small = self.make(np.array([7, 8], np.int64), structured_vectors(2))
        _, found = small.search(structured_vectors(1, seed=3), 10)
        assert set(found.ravel().tolist()) - {-1} == {7, 8}

    def test_save_and_reload_gives_the_same_answers(self, data, tmp_path: Path) -> None:
        ids, vectors, queries = data
        index = self.make(ids, vectors)
        index.remove(ids[:3])
        loaded = self.reload(index, tmp_path)
        assert loaded.kind == index.kind and len(loaded) == len(ids) - 3
        np.testing.assert_array_equal(loaded.search(queries, 5)[1], index.search(queries, 5)[1])

    def test_snapshot_holds_exactly_the_live_entries(self, data) -> None:
        ids, vectors, _ = data
        index = self.make(ids[:500], vectors[:500])
        index.remove(ids[:100])
        snap_ids, snap_vectors = index.snapshot()
        assert sorted(snap_ids.tolist()) == ids[100:500].tolist()
        row = snap_ids.tolist().index(int(ids[100]))
        np.testing.assert_allclose(snap_vectors[row], vectors[100], atol=1e-6)

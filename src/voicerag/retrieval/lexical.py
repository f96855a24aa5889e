"""Lexical index: BM25 (bm25s) with English stemming and stopwords."""

from __future__ import annotations

import threading

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stopword-free, stemmed tokens, the same for documents and queries."""
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False)


class LexicalIndex:
    """BM25 over the chunks of one collection.

    bm25s has no incremental update, so every change re-indexes from the cached token lists (tokenising
    only the new texts); the new index replaces the old one in one assignment, so readers never block.
    """

    def __init__(self) -> None:
        self._tokens: dict[int, list[str]] = {}
        self._ids = np.zeros(0, np.int64)
        self._bm25: bm25s.BM25 | None = None
        self._write = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def update(self, add_ids: np.ndarray, add_texts: list[str], remove_ids: np.ndarray) -> None:
        with self._write:
            for i in remove_ids:
                self._tokens.pop(int(i), None)
            for i, tokens in zip(add_ids, tokenize(list(add_texts)) if len(add_texts) else [], strict=True):
                self._tokens[int(i)] = tokens
            ids = np.fromiter(self._tokens, dtype=np.int64, count=len(self._tokens))
            bm25 = None
            if len(ids):
                bm25 = bm25s.BM25()
                bm25.index([self._tokens[int(i)] or [""] for i in ids], show_progress=False)
            self._ids, self._bm25 = ids, bm25

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) with a positive BM25 score."""
        ids, bm25 = self._ids, self._bm25
        if bm25 is None or not len(ids):
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores = bm25.get_scores(tokenize([query])[0])
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return scores[top].astype(np.float32), ids[top]

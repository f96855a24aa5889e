"""Lexical index: BM25 (Lucene variant) over an inverted index that is updated in place and saved as arrays.

bm25s (the previous engine) precomputes every score, so any change re-indexes the whole collection and a
restart re-tokenises every chunk (the read-path issue measured 19.5 s at 20k chunks). Here the scores are computed
at query time from the postings of the query's terms, so adding or removing chunks touches only their terms, and
the index is saved and loaded as plain arrays (no pickle, no re-tokenising). Tokens are the same as bm25s's: lower-cased
``\\w\\w+`` words, English stopwords removed, Snowball-stemmed.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path
from typing import Protocol

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_STEMMER = Stemmer.Stemmer("english")
_WORDS = re.compile(r"(?u)\b\w\w+\b").findall
_STOPWORDS = frozenset(STOPWORDS_EN)

K1 = 1.5
B = 0.75


def _idf(n: int, df: int) -> float:
    """Lucene's BM25 idf of a term that ``df`` of ``n`` chunks hold."""
    return float(np.log1p((n - df + 0.5) / (df + 0.5)))


def tokenize(text: str) -> list[str]:
    """Lower-cased, stopword-free, stemmed tokens, the same for documents and queries."""
    return _STEMMER.stemWords([w for w in _WORDS(text.lower()) if w not in _STOPWORDS])


class LexicalSearch(Protocol):
    """Keyword search over the chunks of one collection; ids are chunk ids."""

    def __len__(self) -> int: ...
    def ids(self) -> np.ndarray: ...
    def update(self, add_ids: np.ndarray, add_texts: list[str], remove_ids: np.ndarray) -> None: ...
    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def idf(self, tokens: set[str]) -> dict[str, float]: ...
    def save(self, path: Path) -> None: ...


class BM25Index:
    """BM25 with k1 = 1.5, b = 0.75 and Lucene's idf, scored from postings at query time.

    Each chunk has a slot; removing a chunk marks its slot dead (its postings are skipped and no longer count
    in document frequencies or the average length) and the postings are compacted once a quarter of the
    slots are dead. Readers and writers share one lock; a writer holds it only to splice arrays, never while
    tokenising.

    A term's BM25 weight in each of its postings depends only on the index, not on the query, so it is computed
    on the term's first query and kept until the next change: a query then only adds up its terms' weights. A
    change moves every weight (the chunk count and the average length change), but not the postings' chunk
    lengths: those are kept per term until its postings change, so the first query after a change recomputes
    its weights without gathering them again (two floats per posting of the terms asked for, at most).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vocab: dict[str, int] = {}
        self._post_slots: list[np.ndarray] = []  # per term: slots holding it (int32)
        self._post_tfs: list[np.ndarray] = []  # per term: its count in each of those slots (float32)
        self._ids = np.zeros(0, np.int64)  # slot -> chunk id
        self._lengths = np.zeros(0, np.float32)  # slot -> token count
        self._alive = np.zeros(0, bool)
        self._slots = 0
        self._slot_of: dict[int, int] = {}
        self._total_length = 0.0
        self._weights: dict[int, tuple[int, np.ndarray]] = {}  # term id -> (df, weight per posting), until a change
        self._scaled_lengths: dict[int, np.ndarray] = {}  # term id -> K1 * B * length per posting, until they move

    def __len__(self) -> int:
        return len(self._slot_of)

    def ids(self) -> np.ndarray:
        """Chunk ids in the index."""
        with self._lock:
            return np.fromiter(self._slot_of, np.int64, len(self._slot_of))

    # ---- updates ----------------------------------------------------------------------------------------

    def update(self, add_ids: np.ndarray, add_texts: list[str], remove_ids: np.ndarray) -> None:
        """Remove ``remove_ids``, then add (or replace) ``add_ids`` with their texts."""
        counted = [Counter(tokenize(text)) for text in add_texts]
        with self._lock:
            self._weights.clear()
            self._remove(np.concatenate([np.asarray(remove_ids, np.int64), np.asarray(add_ids, np.int64)]))
            self._add(np.asarray(add_ids, np.int64), counted)
            if self._slots - len(self._slot_of) > max(1000, self._slots // 4):
                self._compact()

    def _remove(self, ids: np.ndarray) -> None:
        for chunk_id in ids.tolist():
            slot = self._slot_of.pop(chunk_id, None)
            if slot is not None:
                self._alive[slot] = False
                self._total_length -= float(self._lengths[slot])

    def _grow(self, needed: int) -> None:
        if needed <= len(self._ids):
            return
        size = max(needed, 2 * len(self._ids), 1024)
        for name, dtype in (("_ids", np.int64), ("_lengths", np.float32), ("_alive", bool)):
            grown = np.zeros(size, dtype)
            grown[: self._slots] = getattr(self, name)[: self._slots]
            setattr(self, name, grown)

    def _add(self, ids: np.ndarray, counted: list[Counter[str]]) -> None:
        if not len(ids):
            return
        first = self._slots
        self._grow(first + len(ids))
        terms: list[int] = []
        slots: list[int] = []
        tfs: list[int] = []
        for offset, (chunk_id, counts) in enumerate(zip(ids.tolist(), counted, strict=True)):
            slot = first + offset
            length = sum(counts.values())
            self._ids[slot], self._lengths[slot], self._alive[slot] = chunk_id, length, True
            self._slot_of[chunk_id] = slot
            self._total_length += length
            for term, tf in counts.items():
                term_id = self._vocab.get(term)
                if term_id is None:
                    term_id = self._vocab[term] = len(self._post_slots)
                    self._post_slots.append(np.zeros(0, np.int32))
                    self._post_tfs.append(np.zeros(0, np.float32))
                terms.append(term_id)
                slots.append(slot)
                tfs.append(tf)
        self._slots = first + len(ids)
        if not terms:  # nothing searchable in these texts (digits alone, stopwords): slots, no postings
            return
        term_arr = np.asarray(terms, np.int64)
        order = np.argsort(term_arr, kind="stable")
        term_arr = term_arr[order]
        slot_arr = np.asarray(slots, np.int32)[order]
        tf_arr = np.asarray(tfs, np.float32)[order]
        bounds = np.flatnonzero(np.diff(term_arr)) + 1
        for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(term_arr)], strict=True):
            term_id = int(term_arr[start])
            self._scaled_lengths.pop(term_id, None)
            self._post_slots[term_id] = np.concatenate([self._post_slots[term_id], slot_arr[start:end]])
            self._post_tfs[term_id] = np.concatenate([self._post_tfs[term_id], tf_arr[start:end]])

    def compact(self) -> int:
        """Drop the slots of removed chunks now; returns how many there were."""
        with self._lock:
            dead = self._slots - len(self._slot_of)
            self._compact()
        return dead

    def _compact(self) -> None:
        """Drop dead slots and renumber the live ones (postings stay in slot order)."""
        self._weights.clear()
        self._scaled_lengths.clear()
        live = np.flatnonzero(self._alive[: self._slots])
        if len(live) == self._slots and len(self._ids) == self._slots:
            return
        renumber = np.full(self._slots, -1, np.int64)
        renumber[live] = np.arange(len(live))
        for term_id, slots in enumerate(self._post_slots):
            keep = self._alive[slots]
            self._post_slots[term_id] = renumber[slots[keep]].astype(np.int32)
            self._post_tfs[term_id] = self._post_tfs[term_id][keep]
        self._ids = self._ids[live].copy()
        self._lengths = self._lengths[live].copy()
        self._alive = np.ones(len(live), bool)
        self._slots = len(live)
        self._slot_of = {int(chunk_id): slot for slot, chunk_id in enumerate(self._ids.tolist())}

    # ---- queries ----------------------------------------------------------------------------------------

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, chunk ids) with a positive score; empty when no query word is indexed."""
        term_ids = [t for t in (self._vocab.get(token) for token in tokenize(query)) if t is not None]
        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        if not term_ids or k <= 0:
            return empty
        with self._lock:
            n = len(self._slot_of)
            if n == 0:
                return empty
            parts_slots, parts_scores = [], []
            for term_id in term_ids:
                memo = self._weights.get(term_id)
                if memo is None:
                    memo = self._weights[term_id] = self._term_weights(term_id, n)
                weights = memo[1]
                if len(weights):
                    parts_slots.append(self._post_slots[term_id])
                    parts_scores.append(weights)
            if not parts_slots:
                return empty
            scores = np.bincount(
                np.concatenate(parts_slots), weights=np.concatenate(parts_scores), minlength=self._slots
            )
            ids = self._ids
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = np.lexsort((ids[candidates], -scores[candidates]))  # ties: the lower (older) chunk id first
        top = candidates[order]
        return scores[top].astype(np.float32), ids[top].copy()

    def idf(self, tokens: set[str]) -> dict[str, float]:
        """Each token's BM25 idf in this index. A token no live chunk holds weighs as the rarest one held (df 1):
        with df 0 it would weigh most, and in a small collection, where every held word's idf is small, the words
        a question uses that the collection lacks ("How often do passwords *change*?") would outweigh the ones it
        holds."""
        with self._lock:
            n = len(self._slot_of)
            out = {}
            for token in tokens:
                term_id = self._vocab.get(token)
                if term_id is None:
                    df = 0
                elif (memo := self._weights.get(term_id)) is not None:  # a question's terms were just searched
                    df = memo[0]
                else:
                    df = int(np.count_nonzero(self._alive[self._post_slots[term_id]]))
                out[token] = _idf(n, max(df, 1))
            return out

    def _term_weights(self, term_id: int, n: int) -> tuple[int, np.ndarray]:
        """How many live chunks hold the term, and its BM25 in each of its postings (0 in dead slots; empty when
        no live chunk holds it)."""
        slots = self._post_slots[term_id]
        alive = self._alive[slots]
        df = int(np.count_nonzero(alive))
        if df == 0:
            return 0, np.zeros(0, np.float32)
        scaled = self._scaled_lengths.get(term_id)
        if scaled is None:
            scaled = self._scaled_lengths[term_id] = np.float32(K1 * B) * self._lengths[slots]
        tfs = self._post_tfs[term_id]
        weights = (
            tfs
            * np.float32(_idf(n, df))
            / (tfs + np.float32(K1 * (1 - B)) + scaled * np.float32(n / self._total_length))
        )
        weights[~alive] = 0.0
        return df, weights

    # ---- persistence ------------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index as arrays (``numpy.savez``) to ``path``. The lock is held only to take references
        (postings arrays are replaced, never changed in place) and copy the per-slot arrays; joining and writing
        happen after it is released, so searches and updates do not wait on a save."""
        with self._lock:
            terms = list(self._vocab)
            post_slots, post_tfs = list(self._post_slots), list(self._post_tfs)
            ids, lengths = self._ids[: self._slots].copy(), self._lengths[: self._slots].copy()
            alive = self._alive[: self._slots].copy()
        sizes = np.fromiter((len(p) for p in post_slots), np.int64, len(post_slots))
        with path.open("wb") as f:
            np.savez(
                f,
                vocab=np.frombuffer("\n".join(terms).encode(), np.uint8),
                indptr=np.r_[0, np.cumsum(sizes)],
                slots=np.concatenate(post_slots) if terms else np.zeros(0, np.int32),
                tfs=np.concatenate(post_tfs) if terms else np.zeros(0, np.float32),
                ids=ids,
                lengths=lengths,
                alive=alive,
            )

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        """An index written by ``save`` (raises OSError or ValueError when the file is unreadable)."""
        index = cls()
        with np.load(path, allow_pickle=False) as data:
            vocab = bytes(data["vocab"]).decode()
            terms = vocab.split("\n") if vocab else []
            indptr, slots, tfs = data["indptr"], data["slots"], data["tfs"]
            if len(indptr) != len(terms) + 1:
                raise ValueError("lexical index file is inconsistent")
            index._vocab = {term: i for i, term in enumerate(terms)}
            index._post_slots = [slots[indptr[i] : indptr[i + 1]] for i in range(len(terms))]
            index._post_tfs = [tfs[indptr[i] : indptr[i + 1]] for i in range(len(terms))]
            index._ids = data["ids"].astype(np.int64)
            index._lengths = data["lengths"].astype(np.float32)
            index._alive = data["alive"].astype(bool) if "alive" in data else np.ones(len(index._ids), bool)
        index._slots = len(index._ids)
        live = np.flatnonzero(index._alive)
        index._slot_of = {int(index._ids[slot]): int(slot) for slot in live.tolist()}
        index._total_length = float(index._lengths[live].sum())
        return index

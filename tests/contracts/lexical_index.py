"""The contract every lexical backend (``LexicalSearch``) passes; subclass and implement ``make``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicerag.retrieval.lexical import LexicalSearch

TEXTS = [
    "the running dogs",
    "cats sleep all day",
    "dogs run in parks",
    "The Eiffel Tower was completed in 1889",
    "quartz falcon ledger quartz",
]


class LexicalIndexContract:
    def make(self) -> LexicalSearch:
        raise NotImplementedError

    def reload(self, index: LexicalSearch, path: Path) -> LexicalSearch:
        raise NotImplementedError

    def filled(self) -> LexicalSearch:
        index = self.make()
        index.update(np.arange(1, len(TEXTS) + 1), TEXTS, np.zeros(0, np.int64))
        return index

    def test_ranks_matches_with_stemming_and_positive_scores(self) -> None:
        scores, ids = self.filled().search("dog running", 10)
        assert set(ids.tolist()) == {1, 3} and scores[0] >= scores[-1] > 0

    def test_removal_and_replacement(self) -> None:
        index = self.filled()
        index.update(np.zeros(0, np.int64), [], np.array([1]))
        assert index.search("dog running", 10)[1].tolist() == [3]
        index.update(np.array([3]), ["nothing canine here"], np.zeros(0, np.int64))  # replaced in place
        assert index.search("dog running", 10)[1].tolist() == []
        assert len(index) == len(TEXTS) - 1 and sorted(index.ids().tolist()) == [2, 3, 4, 5]

    def test_scores_follow_every_change_between_queries(self) -> None:
        index, fresh = self.filled(), self.make()
        index.search("quartz dogs", 10)  # asked once before the changes below
        changes = [
            (np.array([6, 7]), ["quartz quartz quartz", "dogs and more dogs"], np.zeros(0, np.int64)),
            (np.zeros(0, np.int64), [], np.array([5])),
            (np.array([2]), ["quartz cats"], np.zeros(0, np.int64)),
        ]
        texts = dict(enumerate(TEXTS, 1))
        for added, added_texts, removed in changes:
            index.update(added, added_texts, removed)
            texts.update(zip(added.tolist(), added_texts, strict=True))
            for chunk_id in removed.tolist():
                texts.pop(chunk_id)
            rebuilt = self.make()
            rebuilt.update(np.array(list(texts)), list(texts.values()), np.zeros(0, np.int64))
            got, want = index.search("quartz dogs", 10), rebuilt.search("quartz dogs", 10)
            assert got[1].tolist() == want[1].tolist() and np.allclose(got[0], want[0], rtol=1e-5)
        assert fresh.search("quartz", 10)[1].tolist() == []

    def test_idf_is_rarer_for_rarer_words_and_follows_removals(self) -> None:
        index = self.filled()
        idf = index.idf({"dog", "quartz", "unseen"})
        # in one chunk, in two; a word in none weighs as the rarest held one (a small collection's lacking words
        # would otherwise outweigh every word it holds)
        assert idf["unseen"] == idf["quartz"] > idf["dog"] > 0
        index.update(np.zeros(0, np.int64), [], np.array([1]))
        after = index.idf({"dog", "quartz"})
        assert after["dog"] > idf["dog"]  # one chunk holds "dog" now, of four

    def test_queries_without_searchable_words_return_nothing(self) -> None:
        index = self.filled()
        for query in ("the", "x", "???", "", "\ud800 zzzz"):
            scores, ids = index.search(query, 10)
            assert len(ids) == 0 and len(scores) == 0, query
        assert len(self.make().search("dogs", 5)[1]) == 0  # an empty index

    def test_texts_without_searchable_words_are_indexed_and_counted(self) -> None:
        index = self.make()
        index.update(np.array([1, 2]), ["the of and", "x"], np.zeros(0, np.int64))
        assert len(index) == 2 and len(index.search("the", 5)[1]) == 0
        index.update(np.array([3]), ["dogs run"], np.zeros(0, np.int64))
        assert index.search("dog", 5)[1].tolist() == [3]

    def test_k_limits_and_ties_are_stable(self) -> None:
        index = self.make()
        index.update(np.arange(10, 20), ["same words here"] * 10, np.zeros(0, np.int64))
        _, ids = index.search("same words", 3)
        assert ids.tolist() == [10, 11, 12]

    def test_save_and_reload_gives_the_same_answers(self, tmp_path: Path) -> None:
        index = self.filled()
        index.update(np.zeros(0, np.int64), [], np.array([2]))
        loaded = self.reload(index, tmp_path)
        for query in ("dogs", "Eiffel 1889", "quartz", "cats"):
            a, b = index.search(query, 5), loaded.search(query, 5)
            assert a[1].tolist() == b[1].tolist() and np.allclose(a[0], b[0])
        loaded.update(np.array([99]), ["a new dog"], np.zeros(0, np.int64))
        assert 99 in loaded.search("dog", 5)[1].tolist()

    def test_many_updates_compact_without_changing_answers(self) -> None:
        index = self.make()
        n = 3000
        index.update(np.arange(n), [f"item {i} topic{i % 7}" for i in range(n)], np.zeros(0, np.int64))
        before = index.search("topic3", 5)
        index.update(np.zeros(0, np.int64), [], np.arange(0, n, 2))  # past the compaction threshold
        after = index.search("topic3", 2000)
        assert set(after[1].tolist()) == {i for i in range(1, n, 2) if i % 7 == 3}
        assert len(before[1]) == 5

import numpy as np

from voicerag.retrieval.index import choose_kind, ivf_nlist
from voicerag.retrieval.worker import convex_fuse, rrf_fuse


def test_choose_kind() -> None:
    assert choose_kind("auto", 5_000, 384, 20_000, 4096, 32) == "flat"
    assert choose_kind("auto", 50_000, 384, 20_000, 4096, 32) == "hnsw"
    assert choose_kind("auto", 5_000_000, 384, 20_000, 1024, 32) == "ivf"
    assert choose_kind("ivf", 10, 384, 20_000, 4096, 32) == "ivf"


def test_ivf_nlist_keeps_enough_training_points() -> None:
    assert ivf_nlist(1) == 1 and ivf_nlist(100_000) == 1264 and ivf_nlist(4000) == 102


def test_rrf_prefers_agreement() -> None:
    hits = rrf_fuse("c", [(0.9, 1), (0.8, 2), (0.7, 3)], [(5.0, 3), (4.0, 4)], 60)
    assert hits[0].chunk_id == 3  # in both lists
    assert {h.chunk_id for h in hits} == {1, 2, 3, 4}


def test_rrf_ties_go_to_the_better_single_rank_then_the_keyword_match() -> None:
    # 10 is first lexically and absent from dense; 20 is first in dense and absent lexically: equal RRF scores
    hits = rrf_fuse("c", [(0.9, 20), (0.5, 30)], [(7.0, 10), (1.0, 30)], 60)
    assert [h.chunk_id for h in hits][:3] == [30, 10, 20]
    assert np.isclose(hits[1].score, hits[2].score)


def test_convex_fusion_uses_score_margins() -> None:
    # dense barely prefers 1 over 2; lexically 2 is far ahead: with equal weights the margin decides
    hits = convex_fuse("c", [(0.80, 1), (0.79, 2), (0.10, 3)], [(9.0, 2), (1.0, 1)], 0.5)
    assert [h.chunk_id for h in hits][:2] == [2, 1]
    assert hits[0].dense_score == 0.79 and hits[0].lexical_score == 9.0
    dense_only = convex_fuse("c", [(0.80, 1), (0.79, 2)], [(9.0, 2), (1.0, 1)], 1.0)
    assert dense_only[0].chunk_id == 1  # alpha 1: the dense side alone
    single = convex_fuse("c", [(0.5, 7)], [], 0.5)
    assert single[0].chunk_id == 7 and single[0].score == 0.5  # one candidate normalises to 1


def test_embedding_batches_group_texts_of_similar_length() -> None:
    """A model batch is padded to its longest text: short and long texts go to different batches, each text
    exactly once, and a batch never exceeds its size or 25% of padding."""
    from voicerag.retrieval.embedder import PADDING_WASTE, padded_batches

    lengths = [80, 10, 11, 12, 79, 40, 10, 41, 200, 9]
    batches = padded_batches(lengths, batch_size=3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        width, real = max(lengths[i] for i in batch), sum(lengths[i] for i in batch)
        assert len(batch) <= 3 and width * len(batch) <= (1 + PADDING_WASTE) * real, batch
    assert [lengths[i] for i in batches[0]] == [9, 10, 10]  # shortest first
    assert len(padded_batches([32] * 70, batch_size=32)) == 3  # equal short lengths: full batches
    # long texts go a few at a time: a batch's attention (texts x width x width) stays bounded
    from voicerag.retrieval.embedder import ATTENTION_CELLS

    for batch in padded_batches([256] * 5 + [128] * 9 + [64] * 40, batch_size=32):
        width = max(([256] * 5 + [128] * 9 + [64] * 40)[i] for i in batch)
        assert len(batch) * width**2 <= ATTENTION_CELLS or len(batch) == 1
    assert len(padded_batches([128] * 8, batch_size=32)) == 2


async def test_local_embeddings_do_not_depend_on_how_texts_are_batched() -> None:
    import asyncio

    from voicerag.retrieval.embedder import OnnxMiniLMEmbedder

    texts = ["When?", "The museum opens at nine in the morning on weekdays and at ten on Saturdays.", "Tickets."]
    together = OnnxMiniLMEmbedder(32, 1, asyncio.Semaphore(1)).embed_sync(texts)
    alone = np.vstack([OnnxMiniLMEmbedder(1, 1, asyncio.Semaphore(1)).embed_sync([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)

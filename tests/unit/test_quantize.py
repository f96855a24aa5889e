import numpy as np

from voicerag.retrieval.quantize import pack_vectors, unpack_vectors


def test_packed_vectors_keep_their_cosines() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(50, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[3] = 0  # a unit without a vector stays without one
    packed = pack_vectors(vectors)
    assert len(packed) == 50 * (384 + 4)  # a quarter of float32, plus a scale per row
    back = unpack_vectors(packed, 384)
    query = vectors[0]
    assert np.abs(back @ query - vectors @ query).max() < 0.01
    assert not back[3].any()

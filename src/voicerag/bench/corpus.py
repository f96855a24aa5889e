"""The bench's synthetic corpus and its request streams."""

from __future__ import annotations

import random

import numpy as np

from voicerag.documents.loaders import Document

WORDS = [
    "river",
    "mountain",
    "engine",
    "protocol",
    "harvest",
    "violin",
    "glacier",
    "market",
    "theory",
    "signal",
    "copper",
    "orbit",
    "garden",
    "cipher",
    "lantern",
    "canyon",
    "vessel",
    "meadow",
    "quartz",
    "falcon",
    "archive",
    "beacon",
    "timber",
    "voltage",
    "harbor",
    "compass",
    "saddle",
    "pixel",
    "cathedral",
    "nebula",
    "tundra",
    "ledger",
    "marble",
    "kernel",
    "monsoon",
    "prism",
    "atlas",
    "orchard",
    "citadel",
    "ember",
    "frontier",
]


def synthetic_corpus(count: int, seed: int = 0) -> tuple[list[Document], list[str]]:
    """``count`` documents of ~60 words (one chunk each) from a small vocabulary, and one question per document."""
    rng = random.Random(seed)
    docs, questions = [], []
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(60)]
        docs.append(Document(f"s{i}", f"Record {i}. " + " ".join(words) + ".", f"Synthetic {i}"))
        questions.append(f"What does record {i} say about {words[3]} and {words[17]}?")
    return docs, questions


def zipf_mix(questions: list[str], requests: int, exponent: float, seed: int = 0) -> list[str]:
    """A request stream over ``questions`` whose popularity follows a Zipf law (repeats like real traffic)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(questions) + 1, dtype=np.float64)
    weights = ranks**-exponent
    picks = rng.choice(len(questions), size=requests, p=weights / weights.sum())
    return [questions[i] for i in picks]

"""How safe is the semantic answer cache? Precision and hit rate per threshold on SQuAD questions.

Negatives: pairs of *different* questions written about the same paragraph (a hit would serve a wrong
answer). Positives: rewordings of a question that keep its meaning (a hit is wanted). SQuAD has no
paraphrase pairs, so the positives come from fixed rewording templates; they are easier than real
paraphrases, so the hit rate here is an upper bound while the precision figure is the one that matters.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from voicerag.evaluation.retrieval import load_beir

TEMPLATES = [
    "Can you tell me {q}",
    "I would like to know: {q}",
    "Quick question, {q}",
    "{q} Please answer briefly.",
    "Do you know {q}",
]


def reword(question: str, rng: random.Random) -> str:
    q = question.strip()
    q = re.sub(r"^What's\b", "What is", q)
    q = q[0].lower() + q[1:] if q[:1].isupper() and not q[1:2].isupper() else q
    return rng.choice(TEMPLATES).format(q=q)


async def evaluate_semantic_cache(embed: Any, folder: Path, pairs: int = 2000, seed: int = 0) -> dict[str, Any]:
    data = load_beir(folder)
    rng = random.Random(seed)
    by_paragraph: dict[str, list[str]] = defaultdict(list)
    for qid, rel in data.qrels.items():
        for doc in rel:
            by_paragraph[doc].append(qid)
    groups = [qs for qs in by_paragraph.values() if len(qs) >= 2]
    negatives = []
    for _ in range(pairs):
        a, b = rng.sample(rng.choice(groups), 2)
        negatives.append((data.queries[a], data.queries[b]))
    sample = rng.sample(sorted(data.qrels), min(pairs, len(data.qrels)))
    positives = [(data.queries[q], reword(data.queries[q], rng)) for q in sample]

    async def similarities(items: list[tuple[str, str]]) -> np.ndarray:
        left = await embed([a.casefold() for a, _ in items])
        right = await embed([b.casefold() for _, b in items])
        return np.sum(left * right, axis=1)

    neg, pos = await similarities(negatives), await similarities(positives)
    rows = []
    for threshold in np.round(np.arange(0.80, 0.995, 0.01), 2):
        true_hits = int(np.sum(pos >= threshold))
        false_hits = int(np.sum(neg >= threshold))
        precision = true_hits / (true_hits + false_hits) if true_hits + false_hits else 1.0
        rows.append(
            {
                "threshold": float(threshold),
                "precision": round(precision, 4),
                "paraphrase_hit_rate": round(true_hits / len(pos), 4),
                "false_hit_rate": round(false_hits / len(neg), 4),
            }
        )
    safe = [r for r in rows if r["precision"] >= 0.99]
    return {
        "negative_pairs": len(neg),
        "paraphrase_pairs": len(pos),
        "thresholds": rows,
        "lowest_threshold_with_precision_99": safe[0]["threshold"] if safe else None,
    }

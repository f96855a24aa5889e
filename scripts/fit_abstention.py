"""Fit the answerer's "did the sources answer?" model from 'voicerag eval answers DIR --cases --json' outputs.

    voicerag eval answers ../shared/data/docs-qa --cases --json > docs.json
    voicerag eval answers ../shared/data/squad-beir --limit 400 --cases --json > squad.json
    python scripts/fit_abstention.py docs.json squad.json

Each file is a documentation set's cases (answerable and unanswerable questions) or SQuAD's (each question asked
with its paragraph and with it taken out). Fits a logistic regression (numpy, L2, balanced classes, each source
weighing the same in all) on the features of every case after standardising them, and prints the constants for
voicerag/answer/extractive.py. Held out: on a documentation set, each project is scored by a model fit without
it; on SQuAD, every other question is held out. Reported at a few thresholds: accuracy, abstention precision
and recall, false abstentions."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

FEATURES = [
    "similarity",
    "similarity_gap",
    "chosen_similarity",
    "overlap",
    "covered",
    "dense",
    "source_coverage",
    "top_source_coverage",
    "best_unit_score",
]


def fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float = 1e-2, steps: int = 3000, rate: float = 0.1):
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - y) * weight
        w -= rate * (x.T @ g / weight.sum() + l2 * w)
        b -= rate * float(g.sum() / weight.sum())
    return w, b


def load(path: str, n: int) -> list[dict[str, Any]]:
    """Cases as {source, group, positive, right, features}."""
    with open(path) as f:
        data = json.load(f)
    rows = []
    for i, case in enumerate(data["cases"]):
        if "answerable" in case and "id" in case:  # a documentation set
            group = f"{n}:{case.get('project') or 'docs'}"
            positive, right = case["answerable"], case["text_right"]
        else:  # SQuAD pairs: answerable, then unanswerable
            group = f"{n}:squad:{(i // 2) % 2}"
            positive, right = case["kind"] == "answerable", case["right"]
        rows.append({"source": n, "group": group, "positive": positive, "right": right, "features": case["features"]})
    return rows


def main(paths: list[str]) -> None:
    rows = [row for n, path in enumerate(paths) for row in load(path, n)]
    x = np.array([[r["features"][name] for name in FEATURES] for r in rows])
    y = np.array([1.0 if r["positive"] else 0.0 for r in rows])
    source = np.array([r["source"] for r in rows])
    weight = np.ones(len(rows))
    for s in set(source):  # each file weighs the same, and within it each class
        for label in (0.0, 1.0):
            mask = (source == s) & (y == label)
            weight[mask] = 1.0 / max(1, mask.sum())
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    w, b = fit(z, y, weight)
    for s, path in enumerate(paths):
        print(f"== {path}: held out")
        mask_s = source == s
        groups = sorted({r["group"] for r, m in zip(rows, mask_s, strict=True) if m})
        p = np.zeros(len(rows))
        for g in groups:
            test = np.array([r["group"] == g for r in rows])
            wg, bg = fit(z[~test], y[~test], weight[~test])
            p[test] = 1 / (1 + np.exp(-(z[test] @ wg + bg)))
        right = np.array([r["right"] for r in rows])
        for t in (0.2, 0.3, 0.4, 0.5, 0.6):
            found = p >= t
            pos, neg = mask_s & (y == 1), mask_s & (y == 0)
            abstained = mask_s & ~found
            precision = (abstained & neg).sum() / max(1, abstained.sum())
            print(
                f"  threshold {t}: accuracy {(found & right & pos).sum() / pos.sum():.3f}, abstention precision "
                f"{precision:.3f}, recall {(abstained & neg).sum() / neg.sum():.3f},"
                f" false abstentions {(pos & ~found).sum() / pos.sum():.3f}"
            )
    print("_MEAN =", {n: round(float(v), 4) for n, v in zip(FEATURES, mean, strict=True)})
    print("_SCALE =", {n: round(float(v), 4) for n, v in zip(FEATURES, scale, strict=True)})
    print("_WEIGHT =", {n: round(float(v), 3) for n, v in zip(FEATURES, w, strict=True)})
    print("_BIAS =", round(b, 3))


if __name__ == "__main__":
    main(sys.argv[1:])

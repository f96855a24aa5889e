"""Fit the answerer's "did the sources answer?" model from 'voicerag eval answers DIR --cases --json' output.

    voicerag eval answers ../shared/data/squad-beir --limit 1000 --cases --json > cases.json
    python scripts/fit_abstention.py cases.json

Fits a logistic regression (numpy, L2) on the features of every case (answerable: 1, unanswerable: 0) after
standardising them, prints the constants for voicerag/answer/extractive.py, and, fitting on every other
question and testing on the rest, the held-out AUC and the accuracy / abstention precision / recall at a few
thresholds."""

from __future__ import annotations

import json
import sys

import numpy as np


def fit(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 3000, rate: float = 0.1
) -> tuple[np.ndarray, float]:
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= rate * (x.T @ (p - y) / len(y) + l2 * w)
        b -= rate * float((p - y).mean())
    return w, b


def main(path: str) -> None:
    with open(path) as f:
        cases = json.load(f)["cases"]
    features = list(cases[0]["features"])  # what the answerer computes, in its order
    x = np.array([[c["features"][name] for name in features] for c in cases])
    y = np.array([1.0 if c["kind"] == "answerable" else 0.0 for c in cases])
    right = np.array([c["right"] for c in cases])
    question = np.arange(len(cases)) // 2  # cases come in pairs: answerable, then unanswerable
    train = question % 2 == 0
    mean, scale = x[train].mean(0), x[train].std(0) + 1e-9
    z = (x - mean) / scale
    w, b = fit(z[train], y[train])
    p = 1 / (1 + np.exp(-(z @ w + b)))
    test = ~train
    pos, neg = p[test & (y == 1)], p[test & (y == 0)]
    print(f"held-out AUC {float((pos[:, None] > neg[None, :]).mean()):.3f}")
    for t in (0.1, 0.2, 0.3, 0.4, 0.5):
        found = p >= t
        answerable, unanswerable, abstained = test & (y == 1), test & (y == 0), test & ~found
        accuracy = (found & right & answerable).sum() / answerable.sum()
        precision = (abstained & (y == 0)).sum() / max(1, abstained.sum())
        recall = (abstained & unanswerable).sum() / unanswerable.sum()
        print(f"threshold {t}: accuracy {accuracy:.3f}, abstention precision {precision:.3f}, recall {recall:.3f}")
    print("_MEAN =", {n: round(float(v), 4) for n, v in zip(features, mean, strict=True)})
    print("_SCALE =", {n: round(float(v), 4) for n, v in zip(features, scale, strict=True)})
    print("_WEIGHT =", {n: round(float(v), 3) for n, v in zip(features, w, strict=True)})
    print("_BIAS =", round(b, 3))


if __name__ == "__main__":
    main(sys.argv[1])

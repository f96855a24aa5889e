"""Fit the end-of-turn model (``voicerag.speech.turn_end``) on rows from ``make_turn_end_data.py``.

    python scripts/fit_turn_end.py turn_end_rows.jsonl --weights src/voicerag/speech/assets/turn_end.json \
        > benchmarks/quality/turn_end_fit.json

L2-regularised logistic regression (Newton's method, numpy). Features seen in fewer than ``--min-count`` rows are
dropped. The report (stdout, JSON) gives 5-fold cross-validated figures, folds grouped by turn (a question and its
prefix never sit on both sides) and, separately, held out by source (fit without docs-qa, scored on docs-qa): at
each threshold, the share of unfinished prefixes judged finished (each one a turn ended early if the speaker pauses
there) and of finished turns judged unfinished (each one waits the long silence).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from voicerag.speech.turn_end import turn_features

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9)


def fit(rows: list[dict], min_count: int, l2: float) -> dict[str, float]:
    counts = Counter(name for row in rows for name in set(turn_features(row["text"])))
    names = sorted(name for name, n in counts.items() if n >= min_count)
    index = {name: i for i, name in enumerate(names)}
    x = np.zeros((len(rows), len(names)))
    for r, row in enumerate(rows):
        for name in turn_features(row["text"]):
            if name in index:
                x[r, index[name]] = 1.0
    y = np.array([1.0 if row["complete"] else 0.0 for row in rows])
    w = np.zeros(len(names))
    penalty = np.full(len(names), l2)
    penalty[index["bias"]] = 0.0
    for _ in range(50):  # Newton's method on the penalised log-likelihood
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {name: round(float(w[i]), 4) for name, i in index.items() if abs(w[i]) > 1e-4 or name == "bias"}


def score(weights: dict[str, float], rows: list[dict]) -> list[tuple[float, bool]]:
    out = []
    for row in rows:
        s = sum(weights.get(name, 0.0) for name in turn_features(row["text"]))
        out.append((1.0 / (1.0 + np.exp(-s)), bool(row["complete"])))
    return out


def rates(scored: list[tuple[float, bool]]) -> list[dict]:
    prefixes = [p for p, complete in scored if not complete]
    finished = [p for p, complete in scored if complete]
    return [
        {
            "threshold": t,
            "prefix_judged_finished": round(sum(p >= t for p in prefixes) / len(prefixes), 4),
            "finished_judged_unfinished": round(sum(p < t for p in finished) / len(finished), 4),
        }
        for t in THRESHOLDS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("--weights", type=Path, help="write the fitted model here (the package's asset)")
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--l2", type=float, default=1.0)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.rows.open()]
    turns = len(rows) // 2  # rows come in pairs: a finished turn, then its prefix
    folds = np.random.default_rng(0).permutation(turns) % 5
    scored = []
    for fold in range(5):
        train = [row for i, row in enumerate(rows) if folds[i // 2] != fold]
        test = [row for i, row in enumerate(rows) if folds[i // 2] == fold]
        scored += score(fit(train, args.min_count, args.l2), test)
    by_source = score(
        fit([r for r in rows if r["source"] != "docs-qa"], args.min_count, args.l2),
        [r for r in rows if r["source"] == "docs-qa"],
    )
    weights = fit(rows, args.min_count, args.l2)
    report = {
        "rows": len(rows),
        "sources": dict(Counter(row["source"] for row in rows)),
        "min_count": args.min_count,
        "l2": args.l2,
        "features": len(weights),
        "cross_validated_grouped_by_turn": rates(scored),
        "held_out_docs_qa": rates(by_source),
    }
    if args.weights:
        args.weights.parent.mkdir(parents=True, exist_ok=True)
        model = {"fit": {k: report[k] for k in ("rows", "sources", "min_count", "l2")}, "weights": weights}
        args.weights.write_text(json.dumps(model, indent=1, sort_keys=True) + "\n")
        print(f"{len(weights)} weights -> {args.weights}", file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

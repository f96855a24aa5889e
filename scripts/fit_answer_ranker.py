"""Fit the extractive answerer's unit ranker (voicerag/answer/extractive.py: _UNIT_WEIGHT).

    python scripts/fit_answer_ranker.py DOCS_SET [SQUAD_BEIR] [--data-dir DIR] [--squad N]

For every answerable question of the documentation set (corpus/ + questions.jsonl) and, optionally, N SQuAD
questions, the question is searched as the server does and each candidate unit of its sources is labelled 1
when its text holds an accepted answer (a must_contain string; a SQuAD gold answer). A logistic regression
(numpy, L2) over ``unit_features`` is fit on all of them. It prints the constants, and leave-one-project-out
figures on the documentation set (fit without a project, pick the top unit on its questions): the share of
questions whose top unit holds the answer, beside the hand-set weights'."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from voicerag import VoiceRAG, load_settings
from voicerag.answer import extractive
from voicerag.evaluation.docs import contains_any, is_docs_set, load_questions
from voicerag.evaluation.retrieval import load_beir, squad_normalize
from voicerag.retrieval.lexical import tokenize


def fit(
    questions: list[tuple[str, np.ndarray, np.ndarray]], l2: float = 1e-2, steps: int = 1500, rate: float = 0.5
) -> np.ndarray:
    """A listwise fit: per question, a softmax over its units' scores, pushing the probability onto the units
    that hold the answer (what picking the top unit needs); SQuAD questions weigh 0.3 of a documentation one."""
    w = np.zeros(questions[0][1].shape[1])
    for _ in range(steps):
        grad, total = np.zeros_like(w), 0.0
        for group, x, y in questions:
            if not y.any():
                continue
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            q = p * y
            q /= q.sum()
            weight = SQUAD_WEIGHT if group == "squad" else 1.0
            grad += weight * (x.T @ (p - q))
            total += weight
        w -= rate * (grad / total + l2 * w)
    return w


SQUAD_WEIGHT = 0.3


async def collect(rag: VoiceRAG, questions: list[tuple[str, str, Any]], collection: str) -> list[dict[str, Any]]:
    """Per question: its group, and each candidate's features and label."""
    generator = extractive.ExtractiveGenerator(rag.settings.answer_sentences, min_confidence=-1.0)
    rows = []
    for group, question, accept in questions:
        sources = await rag.pipeline.search(question, [collection], None, rag.settings.top_k, use_cache=False)
        units = generator.units_of(sources)
        if not any(units):
            continue
        similarities = await rag.pipeline.unit_similarities(question, sources, generator, units=units)
        idf = rag.retriever.idf({collection}, set(tokenize(question)))
        scored, *_ = generator.rank(question, sources, similarities, idf, units)
        rows.append(
            {
                "group": group,
                "features": [c.features for c in scored],
                "labels": [float(accept(c.unit.text)) for c in scored],
            }
        )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("docs", type=Path)
    parser.add_argument("squad", type=Path, nargs="?")
    parser.add_argument("--squad-questions", type=int, default=300)
    parser.add_argument("--data-dir", type=Path, default=Path("data/fit-ranker"))
    parser.add_argument("--rows", type=Path, help="keep the collected candidates here (and reuse them when present)")
    args = parser.parse_args()
    if args.rows and args.rows.is_file():
        rows = json.loads(args.rows.read_text())
    else:
        rows = await gather(args)
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    report_fit(rows)


async def gather(args: argparse.Namespace) -> list[dict[str, Any]]:
    assert is_docs_set(args.docs), f"{args.docs}: corpus/ and questions.jsonl expected"
    settings = load_settings(data_dir=args.data_dir)
    async with await VoiceRAG.open(settings) as rag:
        from voicerag.documents.loaders import load_paths

        await rag.ingest("fit-docs", load_paths([args.docs / "corpus"], []))
        docs = [
            (q.get("project", "docs"), q["question"], lambda text, q=q: contains_any(text, q["must_contain"]))
            for q in load_questions(args.docs)
            if q["answerable"]
        ]
        rows = await collect(rag, docs, "fit-docs")
        if args.squad:
            data = load_beir(args.squad)
            await rag.ingest("fit-squad", data.corpus)
            asked = [q for q in data.queries if q in data.answers][:: max(1, len(data.queries) // args.squad_questions)]
            squad = [
                (
                    "squad",
                    data.queries[qid],
                    lambda text, qid=qid: any(
                        g and g in squad_normalize(text) for g in map(squad_normalize, data.answers[qid])
                    ),
                )
                for qid in asked[: args.squad_questions]
            ]
            rows += await collect(rag, squad, "fit-squad")
    return rows


def report_fit(rows: list[dict[str, Any]]) -> None:
    names = [n for n in rows[0]["features"][0] if n != "best_unit_score"]  # the question's, not the unit's
    questions = [
        (r["group"], np.array([[f[n] for n in names] for f in r["features"]]), np.array(r["labels"])) for r in rows
    ]

    def top(selected: list[tuple[str, np.ndarray, np.ndarray]], w: np.ndarray, n: int = 1) -> float:
        return float(np.mean([y[np.argsort(-(x @ w))[:n]].max() > 0 for _, x, y in selected]))

    groups = sorted({g for g, _, _ in questions} - {"squad"})
    hand = np.array([extractive._UNIT_WEIGHT.get(n, 0.0) for n in names])
    report: dict[str, Any] = {"questions": len(rows), "leave_one_project_out": {}}
    for group in groups:
        test = [q for q in questions if q[0] == group]
        w = fit([q for q in questions if q[0] != group])
        report["leave_one_project_out"][group] = {
            "questions": len(test),
            "top_unit_right": round(top(test, w), 3),
            "top_two_units_right": round(top(test, w, 2), 3),
            "top_unit_right_committed_weights": round(top(test, hand), 3),
        }
    w = fit(questions)
    docs = [q for q in questions if q[0] != "squad"]
    report["fit_on_all"] = {"docs_top_unit_right": round(top(docs, w), 3), "oracle_docs": top(docs, w, 10**6)}
    if any(q[0] == "squad" for q in questions):
        report["fit_on_all"]["squad_top_unit_right"] = round(top([q for q in questions if q[0] == "squad"], w), 3)
    print(json.dumps(report, indent=2))
    print("_UNIT_WEIGHT =", {n: round(float(v), 3) for n, v in zip(names, w, strict=True)})


if __name__ == "__main__":
    asyncio.run(main())

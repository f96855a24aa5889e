"""Answer evaluation on a BEIR folder with answers.jsonl (SQuAD): does the answer hold the gold answer, and does
the answerer say it found nothing when the documents hold nothing?

Each sampled question is asked twice: against the collection (answerable: its paragraph is there) and against
the same collection with its paragraph taken out (unanswerable). Taking it out is done on the retrieved list
(the paragraph's chunks are dropped and the next ones move up), which is what a search of the collection
without that paragraph returns, without re-indexing per question. SQuAD writes several questions per article,
and another paragraph of the same article sometimes holds the answer too, so some "unanswerable" cases are not:
the recall of abstention is a lower bound. ``at_threshold_answer_absent`` scores again without the
unanswerable cases whose remaining sources contain a gold answer's text (a superset of those that truly answer
it: a year or a name may appear in another sense)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicerag.answer.extractive import ExtractiveGenerator
from voicerag.app import VoiceRAG
from voicerag.config import SearchMode
from voicerag.errors import InvalidInput
from voicerag.evaluation.retrieval import collection_for, load_beir, percentile, squad_normalize, strip_citations

THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]  # 0.05 .. 0.95: the confidence sweep reported


async def evaluate_answers(
    rag: VoiceRAG,
    folder: Path,
    limit: int = 500,
    mode: SearchMode | None = None,
    progress: Callable[[int, int], None] | None = None,
    offset: int = 0,
    with_cases: bool = False,
) -> dict[str, Any]:
    """Answer accuracy on answerable questions and abstention precision/recall, at the configured threshold
    and over a sweep of thresholds. Questions are sampled evenly (every n-th from ``offset``: another offset
    gives a disjoint sample, e.g. to test a model fit on the first); ``with_cases`` adds each case's features
    (what scripts/fit_abstention.py fits the answerer's model on)."""
    data = load_beir(folder)
    if not data.answers:
        raise InvalidInput(f"{folder} has no answers.jsonl: answer accuracy needs the gold answers")
    collection = collection_for(folder)
    await rag.ingest(collection, data.corpus)
    asked = [q for q in data.queries if q in data.qrels and q in data.answers]
    step = max(1, len(asked) // limit) if limit else 1
    asked = asked[offset % step :: step][:limit] if limit else asked
    k = rag.settings.top_k
    never_abstains = ExtractiveGenerator(rag.settings.answer_sentences, min_confidence=-1.0)
    cases: list[dict[str, Any]] = []  # one per question and kind: confidence, and whether the text is right
    latencies: list[float] = []
    for n, qid in enumerate(asked, 1):
        question, gold_ids = data.queries[qid], set(data.qrels[qid])
        sources = await rag.pipeline.search(question, [collection], mode, k + 10, use_cache=False)
        for kind, kept in (
            ("answerable", sources[:k]),
            ("unanswerable", [s for s in sources if s.document_id not in gold_ids][:k]),
        ):
            for i, source in enumerate(kept, 1):
                source.n, source.quote = i, None
            started = time.perf_counter()
            extract = await rag.pipeline.extract(question, kept, never_abstains)
            latencies.append((time.perf_counter() - started) * 1000)
            text = squad_normalize(strip_citations(extract.text))
            golds = [g for g in map(squad_normalize, data.answers[qid]) if g]
            right = any(g in text for g in golds)
            retrieved = any(s.document_id in gold_ids for s in kept)
            held = squad_normalize(" ".join(s.text for s in kept))
            cases.append(
                {
                    "kind": kind,
                    "confidence": extract.confidence,
                    "right": right,
                    "retrieved": retrieved,
                    "answer_in_sources": any(g in held for g in golds),
                    "features": extract.features,
                }
            )
        if progress:
            progress(n, len(asked))
    threshold = rag.settings.answer_min_confidence
    sweep = [_score(cases, t) for t in THRESHOLDS]
    meeting = [row for row in sweep if row["abstention_precision"] >= 0.9 and row["abstention_recall"] >= 0.8]
    answerable = [c for c in cases if c["kind"] == "answerable"]
    elsewhere = [c for c in cases if c["kind"] == "unanswerable" and c["answer_in_sources"]]
    absent = [c for c in cases if not (c["kind"] == "unanswerable" and c["answer_in_sources"])]
    return {
        "dataset": str(folder),
        "questions": len(asked),
        "k": k,
        "mode": mode or rag.settings.search_mode,
        "gold_paragraph_retrieved": round(sum(c["retrieved"] for c in answerable) / max(1, len(answerable)), 4),
        "accuracy_if_never_abstaining": round(sum(c["right"] for c in answerable) / max(1, len(answerable)), 4),
        "at_threshold": _score(cases, threshold),
        "unanswerable_with_answer_elsewhere": round(len(elsewhere) / max(1, len(cases) - len(answerable)), 4),
        "at_threshold_answer_absent": _score(absent, threshold),
        "sweep": sweep,
        "thresholds_meeting_targets": [row["threshold"] for row in meeting],
        "extract_ms": {"p50": round(percentile(latencies, 50), 3), "p95": round(percentile(latencies, 95), 3)},
    } | ({"cases": cases} if with_cases else {})


def _score(cases: list[dict[str, Any]], threshold: float) -> dict[str, float]:
    """At ``threshold``: accuracy on answerable questions (an abstention counts as wrong), and abstention
    precision (abstentions that were right to abstain) and recall (unanswerable questions abstained on)."""
    answerable = [c for c in cases if c["kind"] == "answerable"]
    unanswerable = [c for c in cases if c["kind"] == "unanswerable"]
    abstained = [c for c in cases if c["confidence"] < threshold]
    correct = sum(1 for c in answerable if c["confidence"] >= threshold and c["right"])
    rightly = sum(1 for c in abstained if c["kind"] == "unanswerable")
    return {
        "threshold": threshold,
        "accuracy": round(correct / max(1, len(answerable)), 4),
        "abstention_precision": round(rightly / len(abstained), 4) if abstained else 1.0,
        "abstention_recall": round(rightly / max(1, len(unanswerable)), 4),
    }

"""Retrieval evaluation on a BEIR-layout folder: nDCG@10, Recall@100, MRR@10, latency; answer EM/F1."""

from __future__ import annotations

import collections
import hashlib
import json
import math
import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicerag.app import VoiceRAG
from voicerag.config import SearchMode
from voicerag.documents.loaders import Document
from voicerag.errors import InvalidInput


@dataclass
class BeirData:
    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]]


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read corpus.jsonl, queries.jsonl, qrels/{split}.tsv and (when present) answers.jsonl."""
    needed = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise InvalidInput(f"not a BEIR folder: missing {', '.join(missing)}")
    corpus = []
    with needed[0].open() as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                corpus.append(Document(str(row["_id"]), row["text"], row.get("title", "")))
    queries = {}
    with needed[1].open() as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = collections.defaultdict(dict)
    with needed[2].open() as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and int(parts[2]) > 0:
                qrels[parts[0]][parts[1]] = int(parts[2])
    answers = {}
    answers_path = folder / "answers.jsonl"
    if answers_path.is_file():
        with answers_path.open() as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    answers[str(row["_id"])] = row["answers"]
    return BeirData(corpus, queries, dict(qrels), answers)


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if d in relevant:
            return 1.0 / (i + 1)
    return 0.0


def strip_citations(answer: str) -> str:
    """An answer's text without its ``[n]`` source marks."""
    return re.sub(r"\s*\[\d+\]", "", answer)


def squad_normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_f1(prediction: str, truth: str) -> float:
    pred, gold = squad_normalize(prediction).split(), squad_normalize(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def collection_for(folder: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", folder.resolve().name)[:60] or "beir"
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
    return f"eval-{slug}-{digest}"


async def evaluate_retrieval(
    rag: VoiceRAG,
    folder: Path,
    mode: SearchMode,
    limit: int | None = None,
    answers: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Ingest the corpus into a scratch collection (unchanged documents are skipped on later runs), run the
    queries uncached, and score them. With ``answers``, also the extractive answer's EM/F1 on answers.jsonl."""
    data = load_beir(folder)
    collection = collection_for(folder)
    report = await rag.ingest(collection, data.corpus)
    query_ids = [q for q in data.queries if q in data.qrels]
    if limit:
        query_ids = query_ids[:limit]
    ndcg, recall, mrr, latencies, em, f1 = [], [], [], [], [], []
    for n, qid in enumerate(query_ids, 1):
        started = time.perf_counter()
        sources = await rag.pipeline.search(data.queries[qid], [collection], mode, 100, use_cache=False)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = list(dict.fromkeys(s.document_id for s in sources))
        relevant = data.qrels[qid]
        ndcg.append(ndcg_at(ranked, relevant, 10))
        recall.append(recall_at(ranked, relevant, 100))
        mrr.append(mrr_at(ranked, relevant, 10))
        if answers and qid in data.answers:
            top = [s for s in sources[: rag.settings.top_k]]
            for i, s in enumerate(top, 1):
                s.n = i
            text = strip_citations((await rag.pipeline.extract(data.queries[qid], top)).text)
            golds = data.answers[qid]
            em.append(max(float(squad_normalize(text) == squad_normalize(g)) for g in golds))
            f1.append(max(squad_f1(text, g) for g in golds))
        if progress:
            progress(n, len(query_ids))
    result: dict[str, Any] = {
        "dataset": str(folder),
        "collection": collection,
        "mode": mode,
        "queries": len(query_ids),
        "documents": len(data.corpus),
        "ingest": report.to_json(),
        "ndcg@10": round(float(np.mean(ndcg)), 4) if ndcg else 0.0,
        "recall@100": round(float(np.mean(recall)), 4) if recall else 0.0,
        "mrr@10": round(float(np.mean(mrr)), 4) if mrr else 0.0,
        "latency_ms": {"p50": round(percentile(latencies, 50), 3), "p95": round(percentile(latencies, 95), 3)},
    }
    if answers:
        result["answer"] = {
            "exact_match": round(float(np.mean(em)), 4) if em else 0.0,
            "f1": round(float(np.mean(f1)), 4) if f1 else 0.0,
            "questions": len(em),
        }
    return result

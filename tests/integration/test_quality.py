"""Retrieval and answer quality on a labelled SQuAD sample (../shared/data): hybrid beats or equals each single
mode; the answer evaluation scores accuracy and abstention with the features the answerer's model was fit on."""

from __future__ import annotations

import json

import pytest

from voicerag import Settings, VoiceRAG
from voicerag.evaluation.answers import evaluate_answers
from voicerag.evaluation.retrieval import evaluate_retrieval


@pytest.fixture
def squad_sample(shared_data, tmp_path):
    """The first 150 paragraphs of SQuAD dev and their questions, in BEIR layout."""
    source = shared_data / "squad-beir"
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").open()][:150]
    ids = {row["_id"] for row in corpus}
    qrels = [line.rstrip("\n").split("\t") for line in (source / "qrels" / "test.tsv").open()][1:]
    qrels = [q for q in qrels if q[1] in ids][:400]
    qids = {q[0] for q in qrels}
    queries = [json.loads(line) for line in (source / "queries.jsonl").open()]
    folder = tmp_path / "sample"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries if q["_id"] in qids))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join("\t".join(q) for q in qrels))
    answers = [line for line in (source / "answers.jsonl").open() if json.loads(line)["_id"] in qids]
    (folder / "answers.jsonl").write_text("".join(answers))
    return folder


async def test_hybrid_at_least_as_good_as_each_mode(squad_sample, tmp_path) -> None:
    async with await VoiceRAG.open(Settings(data_dir=tmp_path / "data")) as rag:
        scores = {mode: await evaluate_retrieval(rag, squad_sample, mode) for mode in ("dense", "lexical", "hybrid")}
    ndcg = {mode: s["ndcg@10"] for mode, s in scores.items()}
    assert all(s["queries"] == 400 for s in scores.values())
    assert ndcg["dense"] > 0.5 and ndcg["lexical"] > 0.5, ndcg
    assert ndcg["hybrid"] >= max(ndcg["dense"], ndcg["lexical"]), ndcg


async def test_answer_evaluation_scores_answerable_and_unanswerable_cases(squad_sample, tmp_path) -> None:
    from voicerag.answer.extractive import _WEIGHT

    async with await VoiceRAG.open(Settings(data_dir=tmp_path / "data", preload_speech=False)) as rag:
        report = await evaluate_answers(rag, squad_sample, limit=80, with_cases=True)
    cases = report["cases"]
    assert report["questions"] == 80 and len(cases) == 160
    assert [c["kind"] for c in cases[:2]] == ["answerable", "unanswerable"]
    assert all(set(c["features"]) == set(_WEIGHT) for c in cases)  # the model's inputs are what select computes
    assert report["accuracy_if_never_abstaining"] > 0.6, report
    at = report["at_threshold"]
    assert at["accuracy"] > 0.6 and at["abstention_precision"] > 0.6 and at["abstention_recall"] > 0.1, at
    confident = [c["confidence"] for c in cases if c["kind"] == "answerable"]
    doubtful = [c["confidence"] for c in cases if c["kind"] == "unanswerable"]
    assert sum(confident) / len(confident) > sum(doubtful) / len(doubtful) + 0.1  # the model tells them apart
    elsewhere = sum(1 for c in cases if c["kind"] == "unanswerable" and c["answer_in_sources"])
    assert report["unanswerable_with_answer_elsewhere"] == round(elsewhere / 80, 4)

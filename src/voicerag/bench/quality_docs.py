"""The answerer's figures in README.md and docs/ANSWERS.md, rendered from benchmarks/quality/ and the search
bench at 100k chunks."""

from __future__ import annotations

from typing import Any

from voicerag.bench.tables import Sources, ms, table

# the answerer on real documentation: voicerag eval answers ../shared/data/docs-qa --cases --json
DOCS_QA, DOCS_QA_BEFORE = "quality/answers_docs_qa.json", "quality/answers_docs_qa_before.json"
# the answerer on SQuAD questions it was not fit on: voicerag eval answers DIR --limit 1000 --offset 5 --json
SQUAD_HELDOUT = "quality/answers_squad_heldout.json"
# the answer step beside the search at 100k chunks: voicerag bench --profile full --scenarios search
SEARCH_100K = "bench_search_100k.json"


def answer_rows(src: Sources) -> list[list[str]]:
    """The answerer's quality on real documentation and on SQuAD, and what the answer step adds to a search."""
    docs, squad = src(DOCS_QA), src(SQUAD_HELDOUT)["at_threshold"]
    step = src(SEARCH_100K)["scenarios"]
    return [
        [
            f"answers on real documentation (docs-qa dev: {docs['answerable_right'].split('/')[1]} answerable "
            "questions and the on-topic ones the docs do not answer): accuracy; abstention precision / recall; "
            "false abstentions",
            f"{docs['answerable_accuracy']:.3f}; {docs['abstention_precision']:.3f} / {docs['abstention_recall']:.3f}; "
            f"{docs['false_abstention_rate']:.1%}",
            f"`{DOCS_QA}`",
        ],
        [
            f"answers on SQuAD, {src(SQUAD_HELDOUT)['questions']:,} questions held out from every fit: accuracy; "
            "abstention precision / recall",
            f"{squad['accuracy']:.3f}; {squad['abstention_precision']:.3f} / {squad['abstention_recall']:.3f}",
            f"`{SQUAD_HELDOUT}`",
        ],
        [
            f"the answer step beside an uncached hybrid search, {step['corpus']['chunks']:,} chunks, p50 / p95",
            f"{ms(step['answer_step']['p50_ms'])} / {ms(step['answer_step']['p95_ms'])} vs "
            f"{ms(step['search_hybrid_cold']['p50_ms'])} / {ms(step['search_hybrid_cold']['p95_ms'])}",
            f"`{SEARCH_100K}`",
        ],
    ]


def answers(src: Sources) -> str:
    """docs/ANSWERS.md's table: the answerer on real documentation, before this work and now."""
    before, now = src(DOCS_QA_BEFORE), src(DOCS_QA)

    def kinds(d: dict[str, Any]) -> str:
        return " / ".join(f"{d['per_kind_accuracy'][k]:.2f}" for k in ("value", "howto", "list", "multi", "general"))

    def pair(d: dict[str, Any], key: str) -> str:
        return f"{d[key]['p50']:.1f} / {d[key]['p95']:.1f} ms"

    rows = [
        ["documents ingested", before["documents"], now["documents"]],
        [
            "gold file among the 5 sources",
            f"{before['gold_file_in_sources']:.3f}",
            f"{now['gold_file_in_sources']:.3f}",
        ],
        [
            "answerable accuracy (found, and the text holds a `must_contain`)",
            *(f"{d['answerable_accuracy']:.3f} ({d['answerable_right']})" for d in (before, now)),
        ],
        [
            "abstention precision / recall",
            *(f"{d['abstention_precision']:.3f} / {d['abstention_recall']:.3f}" for d in (before, now)),
        ],
        ["per kind: value / howto / list / multi / general", kinds(before), kinds(now)],
        ["false abstentions", f"{before['false_abstention_rate']:.1%}", f"{now['false_abstention_rate']:.1%}"],
        ["found answers holding markup", before["answers_with_markup"], now["answers_with_markup"]],
        ["answer step p50 / p95, uncached", pair(before, "answer_step_ms"), pair(now, "answer_step_ms")],
        ["search p50 / p95, uncached (same run)", pair(before, "search_ms"), pair(now, "search_ms")],
    ]
    return table(["", "before", "now"], rows)

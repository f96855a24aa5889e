"""`voicerag eval`: retrieval, answers, the semantic cache and speech-to-text on labelled data."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from voicerag.cli.common import (
    JsonFlag,
    Mode,
    eval_app,
    folding_table,
    out,
    print_json,
    progress_bar,
    require_bench_extra,
    run_with_rag,
    settings_or_exit,
)

# ---- eval --------------------------------------------------------------------------------------------------


def _evaluate(
    label: str,
    quiet: bool,
    evaluate: Callable[[Any, Callable[[int, int], None]], Awaitable[Any]],
    settings: Any = None,
) -> Any:
    """Run ``evaluate(rag, progress)`` with a progress bar of ``label`` (hidden when ``quiet``)."""

    async def work(rag: Any) -> Any:
        with progress_bar(label, quiet=quiet) as bar:
            task = bar.add_task("eval", total=None)
            return await evaluate(rag, lambda done, total: bar.update(task, completed=done, total=total))

    return run_with_rag(work, settings)


@eval_app.command("retrieval")
def eval_retrieval(
    folder: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv")],
    mode: Annotated[Literal["dense", "lexical", "hybrid"], typer.Option(help="search mode")] = "hybrid",
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N queries")] = None,
    answers: Annotated[
        bool, typer.Option(help="also score the extractive answer on answers.jsonl", metavar="")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """nDCG@10, Recall@100, MRR@10 and query latency p50/p95 (uncached search)."""
    from voicerag.evaluation.retrieval import evaluate_retrieval

    result = _evaluate(
        "queries", as_json, lambda rag, progress: evaluate_retrieval(rag, folder, mode, limit, answers, progress)
    )
    if as_json:
        print_json(result)
        return
    table = folding_table("metric", "value")
    for key in ("queries", "ndcg@10", "recall@100", "mrr@10"):
        table.add_row(key, str(result[key]))
    table.add_row("latency p50 / p95 ms", f"{result['latency_ms']['p50']} / {result['latency_ms']['p95']}")
    if "answer" in result:
        table.add_row("answer EM / F1", f"{result['answer']['exact_match']} / {result['answer']['f1']}")
    out.print(table)


@eval_app.command("answers")
def eval_answers(
    folder: Annotated[
        Path,
        typer.Argument(
            help="BEIR folder with answers.jsonl (SQuAD), or a documentation set: corpus/ + questions.jsonl"
        ),
    ],
    limit: Annotated[int, typer.Option(help="questions sampled evenly across the set (0: all)")] = 500,
    offset: Annotated[int, typer.Option(help="start the even sample here (another offset: a disjoint sample)")] = 0,
    cases: Annotated[bool, typer.Option("--cases", help="add each case's features to the JSON", metavar="")] = False,
    generator: Annotated[
        Literal["extractive", "llm"] | None,
        typer.Option(help="documentation set: answer with this generator (llm: LLM_BASE_URL, LLM_MODEL)"),
    ] = None,
    mode: Mode = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer accuracy (the gold answer in the answer) on answerable questions, and how well the answerer says
    it found nothing when the question's paragraph is taken out: abstention precision and recall, at the
    configured ANSWER_MIN_CONFIDENCE and over a sweep of thresholds. On a documentation set: accuracy per
    kind, abstention on its unanswerable questions, answers holding markup, answer step vs search time."""
    from voicerag.evaluation.answers import evaluate_answers
    from voicerag.evaluation.docs import evaluate_docs_answers, is_docs_set

    if is_docs_set(folder):
        overrides = {"generator": generator, "cache_enabled": False} if generator else {}
        settings = settings_or_exit(**overrides) if overrides else None
        result = _evaluate(
            "questions",
            as_json,
            lambda rag, progress: evaluate_docs_answers(
                rag, folder, mode, progress, cases, limit=limit if generator == "llm" else 0
            ),
            settings,
        )
        if as_json:
            print_json(result)
            return
        table = folding_table("metric", "value")
        for key in (
            "documents",
            "questions",
            "answerable_right",
            "answerable_accuracy",
            "abstention_precision",
            "abstention_recall",
            "false_abstention_rate",
            "answers_with_markup",
            "gold_file_in_sources",
        ):
            table.add_row(key, str(result[key]))
        table.add_row("per kind", json.dumps(result["per_kind_accuracy"]))
        table.add_row("skipped files", str(len(result["skipped_files"])))
        for key in ("search_ms", "answer_step_ms"):
            table.add_row(f"{key} p50 / p95", f"{result[key]['p50']} / {result[key]['p95']}")
        out.print(table)
        return

    result = _evaluate(
        "questions", as_json, lambda rag, progress: evaluate_answers(rag, folder, limit, mode, progress, offset, cases)
    )
    if as_json:
        print_json(result)
        return
    at = result["at_threshold"]
    table = folding_table("metric", "value")
    table.add_row("questions (each asked answerable and unanswerable)", str(result["questions"]))
    table.add_row("gold paragraph in the sources", str(result["gold_paragraph_retrieved"]))
    table.add_row(f"accuracy at threshold {at['threshold']}", str(at["accuracy"]))
    table.add_row("abstention precision / recall", f"{at['abstention_precision']} / {at['abstention_recall']}")
    absent = result["at_threshold_answer_absent"]
    table.add_row(
        "the same, unanswerable cases with the answer elsewhere left out",
        f"{absent['abstention_precision']} / {absent['abstention_recall']}",
    )
    table.add_row("accuracy if never abstaining", str(result["accuracy_if_never_abstaining"]))
    table.add_row("thresholds meeting the targets", ", ".join(map(str, result["thresholds_meeting_targets"])) or "none")
    out.print(table)


@eval_app.command("semantic-cache")
def eval_semantic_cache(
    folder: Annotated[Path, typer.Argument(help="BEIR folder with SQuAD-style questions (several per paragraph)")],
    pairs: Annotated[int, typer.Option(help="pairs of each kind")] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """Precision and hit rate of the semantic answer cache per similarity threshold."""
    from voicerag.evaluation.semantic import evaluate_semantic_cache

    result = run_with_rag(lambda rag: evaluate_semantic_cache(rag.embed, folder, pairs))
    if as_json:
        print_json(result)
        return
    table = folding_table("threshold", "precision", "paraphrase hit rate", "false hit rate")
    for row in result["thresholds"]:
        table.add_row(*(str(row[k]) for k in ("threshold", "precision", "paraphrase_hit_rate", "false_hit_rate")))
    out.print(table)
    out.print(f"lowest threshold with precision >= 99%: {result['lowest_threshold_with_precision_99']}")


@eval_app.command("stt")
def eval_stt(
    folder: Annotated[Path, typer.Argument(help="audio clips and transcripts.tsv (file<TAB>text, a header line)")],
    limit: Annotated[int | None, typer.Option(help="only the first N clips")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Word error rate (Whisper's English normaliser) and real-time factor of the configured transcriber."""
    require_bench_extra()
    from voicerag.evaluation.stt import evaluate_stt, load_transcripts

    async def work(rag: Any) -> dict[str, Any]:
        total = len(load_transcripts(folder)[:limit])
        with progress_bar("clips", quiet=as_json) as bar:
            task = bar.add_task("stt", total=total)
            return await evaluate_stt(rag.speech, folder, limit, lambda: bar.advance(task))

    result = run_with_rag(work)
    if as_json:
        print_json(result)
        return
    table = folding_table("metric", "value")
    for key in ("clips", "audio_seconds", "wer", "rtf", "model"):
        table.add_row(key, str(result[key]))
    out.print(table)

"""Answer evaluation on a documentation set: ``corpus/`` (files in any supported format, with their real markup)
and ``questions.jsonl`` (``id``, ``question``, ``answerable``, ``must_contain``, ``kind``).

The corpus is ingested as a user would (unreadable files skipped and listed); each question is searched and
answered uncached. An answerable question is right when the answer says it found one and its text holds one of
``must_contain`` (case-insensitive, whitespace normalised, and again with whitespace ignored, as the set's own
scorer does); an unanswerable one is right when the answer says it found none."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicerag.answer.extractive import ExtractiveGenerator
from voicerag.app import VoiceRAG
from voicerag.config import SearchMode
from voicerag.documents.loaders import load_paths
from voicerag.errors import InvalidInput
from voicerag.evaluation.retrieval import percentile

# What markup looks like when it leaks into an answer: front matter keys, shortcodes and template placeholders,
# admonition and tab markers, raw link syntax, reST directives and roles, HTML tags.
MARKUP = re.compile(  # HTML: the tags documentation uses, so a literal <TAB> or <name> is not counted
    r"^\s*(?:title|draft|weight|linkTitle|aliases|description|categories):\s"
    r"|\{\{[<%{]?|[%>]\}\}|^\s*(?:!!!|\?\?\?\+?|===)\s|\]\([^)\s]*\)|\]\[[^\]]*\]|^\s*:::\s"
    r"|^\.\. [\w:-]+::|:(?:ref|func|class|meth|exc|attr|doc|pep|mod|data):`"
    r"|</?(?:a|b|i|p|br|div|span|img|nobr|table|tr|td|th|ul|li|h[1-6]|code|pre|em|strong|sup|sub)\b[^>]*>",
    re.MULTILINE,
)


def is_docs_set(folder: Path) -> bool:
    """Whether ``folder`` is laid out as a documentation set (rather than BEIR)."""
    return (folder / "questions.jsonl").is_file() and (folder / "corpus").is_dir()


def has_markup(text: str) -> bool:
    """Whether an answer's text holds markup a person should never read or hear."""
    prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.DOTALL)  # code is shown as code, not read
    return MARKUP.search(prose) is not None


def contains_any(answer: str, needles: list[str]) -> bool:
    """The set's own rule: case-insensitive, whitespace normalised; or equal with all whitespace removed."""
    text = re.sub(r"\s+", " ", answer).strip().lower()
    bare = re.sub(r"\s+", "", text)
    for needle in needles:
        n = re.sub(r"\s+", " ", needle).strip().lower()
        if n and (n in text or re.sub(r"\s+", "", n) in bare):
            return True
    return False


def answered_right(question: dict[str, Any], found: bool, text: str) -> bool:
    """The set's rule for one answer: an answerable question is right when an answer was found and its text holds
    one of ``must_contain``; an unanswerable one when none was found."""
    if not question["answerable"]:
        return not found
    return found and contains_any(text, question.get("must_contain") or [])


def load_questions(folder: Path) -> list[dict[str, Any]]:
    path = folder / "questions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        if not {"id", "question", "answerable"} <= row.keys():
            raise InvalidInput(f"{path}: every line needs 'id', 'question' and 'answerable'")
    return rows


async def evaluate_docs_answers(
    rag: VoiceRAG,
    folder: Path,
    mode: SearchMode | None = None,
    progress: Callable[[int, int], None] | None = None,
    with_cases: bool = False,
    collection: str = "eval-docs",
    limit: int = 0,
) -> dict[str, Any]:
    """Accuracy on answerable questions (overall and per kind), abstention precision and recall, the false
    abstention rate, answers holding markup, and the answer step's time beside the search's (p50/p95).
    With the LLM generator configured, each question is asked whole (search, extractive check, the model's
    answer) and its answer scored; ``limit`` samples that many questions evenly (0: all)."""
    if not is_docs_set(folder):
        raise InvalidInput(f"{folder}: a documentation set needs corpus/ and questions.jsonl")
    questions = load_questions(folder)
    if limit and limit < len(questions):
        questions = questions[:: len(questions) // limit][:limit]
    llm = rag.pipeline.generator.name == "llm"
    skipped: list[dict[str, str]] = []
    documents = load_paths([folder / "corpus"], skipped)
    await rag.ingest(collection, documents)
    k = rag.settings.top_k
    never_abstains = ExtractiveGenerator(rag.settings.answer_sentences, min_confidence=-1.0)
    threshold = rag.settings.answer_min_confidence
    cases: list[dict[str, Any]] = []
    search_ms: list[float] = []
    answer_ms: list[float] = []
    for n, q in enumerate(questions, 1):
        started = time.perf_counter()
        sources = await rag.pipeline.search(q["question"], [collection], mode, k, use_cache=False)
        searched = time.perf_counter()
        extract = await rag.pipeline.extract(q["question"], sources, never_abstains, use_cache=False)
        search_ms.append((searched - started) * 1000)
        answer_ms.append((time.perf_counter() - searched) * 1000)
        found = extract.confidence >= threshold
        if llm:  # the whole ask, as a user gets it: the model's answer, or the extractive one it fell back to
            asked = time.perf_counter()
            answer = await rag.pipeline.ask(q["question"], [collection], mode, k)
            answer_ms[-1] = (time.perf_counter() - asked) * 1000
            extract.text, found = answer.text, answer.found
            extract.confidence = answer.confidence if answer.found else -1.0
            extract.features = extract.features | {"fallback": float(answer.fallback)}
        gold = q.get("gold_file")
        cases.append(
            {
                "id": q["id"],
                "project": q.get("project", ""),
                "kind": q.get("kind", "answerable" if q["answerable"] else "unanswerable"),
                "answerable": bool(q["answerable"]),
                "found": found,
                "confidence": extract.confidence,
                "text_right": contains_any(extract.text, q.get("must_contain") or []),
                "gold_in_sources": bool(gold) and any(gold.endswith(s.document_id) for s in sources),
                "markup": has_markup(extract.text),
                "answer": extract.text,
                "features": extract.features,
            }
        )
        if progress:
            progress(n, len(questions))
    return {
        "dataset": str(folder),
        "documents": len(documents),
        "skipped_files": skipped,
        "questions": len(questions),
        "k": k,
        "mode": mode or rag.settings.search_mode,
        "generator": rag.pipeline.generator.name,
        "llm_fallbacks": sum(1 for c in cases if c["features"].get("fallback")),
        "threshold": threshold,
        **score_docs_cases(cases, threshold),
        "sweep": [score_docs_cases(cases, t, brief=True) for t in [round(0.05 * i, 2) for i in range(1, 20)]],
        "search_ms": {"p50": round(percentile(search_ms, 50), 3), "p95": round(percentile(search_ms, 95), 3)},
        "answer_step_ms": {"p50": round(percentile(answer_ms, 50), 3), "p95": round(percentile(answer_ms, 95), 3)},
    } | ({"cases": cases} if with_cases else {})


def score_docs_cases(cases: list[dict[str, Any]], threshold: float, brief: bool = False) -> dict[str, Any]:
    """The scores at ``threshold`` (a case is found when its confidence reaches it)."""
    answerable = [c for c in cases if c["answerable"]]
    unanswerable = [c for c in cases if not c["answerable"]]
    found = {c["id"]: c["confidence"] >= threshold for c in cases}
    right = [c for c in answerable if found[c["id"]] and c["text_right"]]
    abstained = [c for c in cases if not found[c["id"]]]
    rightly = [c for c in abstained if not c["answerable"]]
    scores: dict[str, Any] = {
        "threshold": threshold,
        "answerable_accuracy": round(len(right) / max(1, len(answerable)), 4),
        "abstention_precision": round(len(rightly) / len(abstained), 4) if abstained else 1.0,
        "abstention_recall": round(len(rightly) / max(1, len(unanswerable)), 4),
        "false_abstention_rate": round(sum(1 for c in answerable if not found[c["id"]]) / max(1, len(answerable)), 4),
    }
    if brief:
        return scores
    per_kind: dict[str, list[bool]] = defaultdict(list)
    for c in answerable:
        per_kind[c["kind"]].append(found[c["id"]] and c["text_right"])
    return scores | {
        "answerable_right": f"{len(right)}/{len(answerable)}",
        "per_kind_accuracy": {kind: round(sum(v) / len(v), 4) for kind, v in sorted(per_kind.items())},
        "text_right_if_never_abstaining": round(sum(c["text_right"] for c in answerable) / max(1, len(answerable)), 4),
        "gold_file_in_sources": round(sum(c["gold_in_sources"] for c in answerable) / max(1, len(answerable)), 4),
        "answers_with_markup": sum(1 for c in cases if found[c["id"]] and c["markup"]),
    }

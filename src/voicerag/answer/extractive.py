"""Extractive answers: no LLM; the sentences of the retrieved chunks that best support the question."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from voicerag.answer.types import Source
from voicerag.answer.units import Unit, answer_units
from voicerag.retrieval.lexical import tokenize

NO_ANSWER = "I could not find that in your documents."

# Words that shape a question but are not what it asks about: the question words, auxiliaries and quantifiers
# ("How many spaces does the car park have?" asks about spaces and a car park, not "many" or "have"). The lexical
# stopword list is short, a small collection may hold none of them, and an idf weighs unseen words most, so how
# much of a question a source covers leaves them out.
QUESTION_WORDS = frozenset(
    tokenize(
        "how what when where who whom whose which why do does did can could would should may might were you me "
        "whenever wherever whatever however whoever tell please know is are was be been being have has had many "
        "much there here it them those some any all more most other only own same so than too very just also"
    )
)


@dataclass
class _Candidate:
    source: Source
    unit: Unit
    score: float = 0.0
    similarity: float = 0.0
    overlap: float = 0.0
    tokens: frozenset[str] = frozenset()
    features: dict[str, float] = field(default_factory=dict)


@dataclass
class Extract:
    """An extractive answer: its text (cited), whether the documents hold an answer, how sure that is (the
    model's probability, or the best word overlap without vectors), and the features it rests on."""

    text: str
    found: bool
    confidence: float
    features: dict[str, float] = field(default_factory=dict)
    pieces: list[str] = field(default_factory=list)  # the text, a cited unit at a time (joined, the text)


_HOW = re.compile(r"^\s*(?:how\b|what(?:'s| is) the (?:way|best way|suggested way)|can i\b|is there a way)", re.I)
_VALUE = re.compile(
    r"\b(?:how (?:many|much|long|big|large|old)|default|version|minimum|maximum|smallest|largest|limit|size|"
    r"which (?:status|port|value|number)|what (?:value|number|port|status))\b",
    re.I,
)
_LIST = re.compile(r"\b(?:which|what)\b(?:\s+\w+){0,3}?\s+(?:\w+s|are|does .* (?:offer|provide|support))\b", re.I)
_CODEISH = re.compile(r"`|\w_\w|\w=|\(\)|--\w|\b[A-Z]{3,}\b|\w\.\w+\(|[a-z][A-Z]")
_NUMBER = re.compile(r"\d")


_IDENTIFIER_BREAK = re.compile(r"_+|(?<=[a-z0-9])(?=[A-Z])")


def words_of(text: str) -> list[str]:
    """The text's search tokens, and the words inside its identifiers too: ``raise_server_exceptions`` and
    ``TestClient`` also count as "raise server exceptions" and "test client" (how-to questions name an option in
    words)."""
    tokens = tokenize(text)
    split = _IDENTIFIER_BREAK.sub(" ", text)
    if split == text:
        return tokens
    seen = set(tokens)
    return tokens + [t for t in tokenize(split) if t not in seen]


@lru_cache(maxsize=65536)
def _words(text: str) -> tuple[str, ...]:
    """``words_of`` a unit's text or context, kept: the same chunks come back question after question."""
    return tuple(words_of(text))


def question_shape(question: str) -> dict[str, float]:
    """What kind of answer the question asks for: how to do something, a value, a list."""
    return {
        "how": float(bool(_HOW.search(question))),
        "value": float(bool(_VALUE.search(question))),
        "list": float(bool(_LIST.search(question))),
    }


def unit_features(
    candidate: _Candidate,
    tokens: list[str],
    q_set: set[str],
    bigrams: float,
    context: set[str],
    idf: dict[str, float],
    q_weight: float,
    shape: dict[str, float],
    top_score: float,
    order: int,
) -> dict[str, float]:
    """What the unit ranker weighs: meaning, words shared with the question (in the unit and in its context),
    where the unit sits, what kind it is, and whether it holds what the question's shape asks for."""
    unit, source = candidate.unit, candidate.source
    text = unit.text
    codeish = float(bool(_CODEISH.search(text)) or unit.kind == "code")
    number = float(bool(_NUMBER.search(text)))
    novel = sum(1 for t in set(tokens) if t not in q_set) / max(1, len(set(tokens)))
    return {
        "similarity": candidate.similarity,
        "overlap": candidate.overlap,
        "bigrams": bigrams,
        "context_overlap": sum(idf.get(t, 0.0) for t in q_set & context) / q_weight,
        "rank": 1.0 / source.n,
        "source_share": max(0.0, source.score / top_score),
        "order": 1.0 / (1 + order),
        "length": math.log1p(len(tokens)),
        "novel": novel,
        "ends_colon": float(text.rstrip().endswith(":")),
        "is_question": float(text.rstrip().endswith("?")),
        "kind_list": float(unit.kind == "list"),
        "kind_item": float(unit.kind == "item"),
        "kind_row": float(unit.kind == "row"),
        "kind_code": float(unit.kind == "code"),
        "how_code": shape["how"] * codeish,
        "value_number": shape["value"] * number,
        "list_list": shape["list"] * float(unit.kind in ("list", "row", "item")),
        "similarity_gap": 0.0,
    }


# What an answer shows that a topic sentence does not: code, a number, an identifier (snake_case, dotted, a call,
# CamelCase), a setting (key=value), a command in capitals (GETSET, MAXLEN).
_ANSWER_BEARING = re.compile(
    r"`[^`]+`|[\w.]*\d[\w.]*|\w+_\w+|\w+\.\w+|\w+\(|\w+=\w*|\b[A-Z]{3,}\b|\b[a-z]+[A-Z]\w*|\b[A-Z][a-z]+[A-Z]\w*"
)


def _bears_answer(unit: Unit, question: str) -> bool:
    """Whether the unit shows code, a value or an identifier the question does not already name."""
    if unit.code:
        return True
    asked = question.lower()
    return any(match.group(0).lower().strip("`") not in asked for match in _ANSWER_BEARING.finditer(unit.text))


def _follow_on(best: _Candidate, ranked: list[_Candidate], question: str) -> _Candidate | None:
    """The unit right after ``best`` in its source, when ``best`` only sets the question up (it asks it, leads
    into something with ":", or names no code, value or identifier the question lacks) and that next one carries
    such a thing: "Occasionally you might want to test the content of 500 error responses." then the code."""
    asks = best.unit.text.rstrip().endswith("?")
    setup = asks or best.unit.text.rstrip().endswith(":") or not _bears_answer(best.unit, question)
    if not setup:
        return None
    after = sorted((c for c in ranked if c.source is best.source and c.unit.start >= best.unit.end), key=_start)
    previous = best
    for step, nearest in enumerate(after[:3]):
        if nearest.unit.start - previous.unit.end > 200:
            return None
        if _bears_answer(nearest.unit, question):
            return nearest
        if not nearest.unit.text.rstrip().endswith("?"):  # the walk passes only over a question the text asks
            return nearest if asks and step == 0 else None  # a question's own next sentence answers it (a FAQ)
        previous = nearest
    return None


def _start(candidate: _Candidate) -> int:
    return candidate.unit.start


class ExtractiveGenerator:
    """Answers with the sentences of the top sources that best answer the question: scored by meaning
    (embedding similarity to the question, when given) and by IDF-weighted word and bigram overlap, with a
    prior for the source's rank. Says it found nothing when no sentence is close enough to the question."""

    name = "extractive"

    def __init__(self, sentences: int = 2, max_sources: int = 5, min_confidence: float = 0.2):
        self.sentences = sentences
        self.max_sources = max_sources
        self.min_confidence = min_confidence

    def with_options(self, **options: Any) -> ExtractiveGenerator:
        """A new answerer with some options changed: a live change swaps it in whole, so a request that took
        the old one keeps its values from its cache key to its answer."""
        values = {"sentences": self.sentences, "max_sources": self.max_sources, "min_confidence": self.min_confidence}
        return ExtractiveGenerator(**(values | options))

    @property
    def signature(self) -> tuple[Any, ...]:
        """What its answers depend on (part of the answer cache key)."""
        return (self.sentences, self.max_sources, self.min_confidence)

    def units_of(self, sources: list[Source]) -> list[list[Unit]]:
        """Each answered-from source's units (the first ``max_sources``), in the order ``select`` expects their
        similarities: cut once per answer and handed to ``select``."""
        return [answer_units(source.text) for source in sources[: self.max_sources]]

    def sentences_of(self, sources: list[Source], units: list[list[Unit]] | None = None) -> list[str]:
        """The candidate units as they are embedded (under their section and lead), in ``select``'s order."""
        return [unit.matched for source_units in (units or self.units_of(sources)) for unit in source_units]

    def _candidates(self, sources: list[Source], units: list[list[Unit]] | None) -> list[_Candidate]:
        per_source = units if units is not None else self.units_of(sources)
        return [_Candidate(source, unit) for source, us in zip(sources, per_source, strict=False) for unit in us]

    def select(
        self,
        question: str,
        sources: list[Source],
        similarities: np.ndarray | None = None,
        corpus_idf: dict[str, float] | None = None,
        units: list[list[Unit]] | None = None,
    ) -> Extract:
        """The answer, with the quoted sentence marked on each source used. ``similarities``: each candidate
        sentence's cosine similarity to the question (``sentences_of`` order); without them, overlap alone.
        ``corpus_idf``: the question words' idf in the searched collections (how much of the question each
        source covers is weighed by it; without it, by the words' rarity among the candidate sentences).
        ``units``: ``units_of(sources)`` when the caller has them already."""
        q_tokens = tokenize(question)
        if not q_tokens and similarities is None:
            return Extract(NO_ANSWER, False, 0.0)
        candidates, df, idf, coverage = self.rank(question, sources, similarities, corpus_idf, units)
        if not candidates:
            return Extract(NO_ANSWER, False, 0.0)
        q_set = set(q_tokens)
        ranked = sorted(candidates, key=lambda c: -c.score)
        sims = sorted((c.similarity for c in candidates), reverse=True)
        features = {
            "similarity": sims[0],
            "similarity_gap": sims[0] - sims[1] if len(sims) > 1 else 0.0,  # one candidate: no margin to weigh
            "chosen_similarity": ranked[0].similarity,
            "overlap": max(c.overlap for c in candidates),
            "covered": sum(1 for t in q_set if t in df) / max(1, len(q_set)),
            "dense": float(sources[0].dense_score or 0.0),
            "source_coverage": max(coverage),
            "top_source_coverage": coverage[0],
            "best_unit_score": ranked[0].features["best_unit_score"],
        }
        if similarities is not None:
            confidence = answer_probability(features)
            found = confidence >= self.min_confidence
        else:  # no vectors: word overlap alone decides
            confidence = features["overlap"]
            found = confidence >= 0.25
        if not found or ranked[0].score <= 0:
            return Extract(NO_ANSWER, False, round(confidence, 4), features)
        best = _reading_order(self._complete(ranked, q_set, idf, question))
        for c in best:
            if c.source.quote is None:
                c.source.quote = c.source.text[c.unit.start : c.unit.end]
                c.source.quote_start = c.source.start + c.unit.start
                c.source.quote_end = c.source.start + c.unit.end
        pieces = [f"{c.unit.text} [{c.source.n}]" for c in best]
        pieces = [pieces[0], *(f" {p}" for p in pieces[1:])]
        return Extract("".join(pieces), True, round(confidence, 4), features, pieces)

    def rank(
        self,
        question: str,
        sources: list[Source],
        similarities: np.ndarray | None = None,
        corpus_idf: dict[str, float] | None = None,
        units: list[list[Unit]] | None = None,
    ) -> tuple[list[_Candidate], dict[str, int], dict[str, float], list[float]]:
        """Every candidate unit scored by the unit ranker (``score``, with the ``features`` it rests on); also the
        units' document frequencies, idf, and each source's coverage of the question (none without units)."""
        q_tokens = words_of(question)
        candidates = self._candidates(sources, units)
        if not candidates:
            return [], {}, {}, []
        q_set = set(q_tokens)
        n = len(candidates)
        token_lists = [_words(c.unit.text) for c in candidates]
        df: dict[str, int] = {}
        for tokens in token_lists:
            for t in set(tokens):
                df[t] = df.get(t, 0) + 1
        idf = {t: math.log(1 + n / df[t]) for t in df}
        coverage = _source_coverage(q_set, sources[: self.max_sources], corpus_idf or idf, math.log(1 + n))
        q_weight = sum(math.log(1 + n) for _ in q_set) or 1.0  # an unseen word weighs the most
        q_bigrams = set(zip(q_tokens, q_tokens[1:], strict=False))
        shape = question_shape(question)
        top_score = max((src.score for src in sources[: self.max_sources]), default=1.0) or 1.0
        positions: dict[int, int] = {}
        for i, (candidate, tokens) in enumerate(zip(candidates, token_lists, strict=True)):
            candidate.tokens = frozenset(tokens)
            candidate.overlap = sum(idf.get(t, 0.0) for t in q_set.intersection(tokens)) / q_weight
            bigrams = len(q_bigrams.intersection(zip(tokens, tokens[1:], strict=False))) / max(1, len(q_bigrams))
            lexical = candidate.overlap + 0.3 * bigrams
            candidate.similarity = float(similarities[i]) if similarities is not None else lexical
            context = set(_words(candidate.unit.context)) if candidate.unit.context else set()
            order = positions.get(candidate.source.n, 0)
            positions[candidate.source.n] = order + 1
            candidate.features = unit_features(
                candidate, tokens, q_set, bigrams, context, idf, q_weight, shape, top_score, order
            )
        best_similarity = max(c.similarity for c in candidates)
        for candidate in candidates:
            candidate.features["similarity_gap"] = candidate.similarity - best_similarity
            candidate.score = unit_score(candidate.features)
        best_score = max(c.score for c in candidates)
        for candidate in candidates:  # scores as a share of the best unit's odds: 1 for it, towards 0 for the rest
            candidate.features["best_unit_score"] = best_score
            candidate.score = math.exp(candidate.score - best_score)
        return candidates, df, idf, coverage

    def _complete(
        self, ranked: list[_Candidate], q_set: set[str], idf: dict[str, float], question: str
    ) -> list[_Candidate]:
        """The best unit, then up to ``sentences - 1`` more with at least a tenth of its odds: one that answers a
        part of the question the chosen ones leave out (its question words not yet covered, idf-weighted: "the
        museum and the library") when there is one, else the next best. Units overlapping a chosen one (a list
        and its own item) or repeating it are skipped."""
        chosen = [ranked[0]]
        covered = q_set & ranked[0].tokens
        weight = sum(idf.get(t, 0.0) for t in q_set) or 1.0
        pool = ranked[1:16]
        follow = _follow_on(ranked[0], ranked, question) if self.sentences > 1 else None
        if follow is not None:  # the best unit sets the question up; the one after it in its source answers
            chosen.append(follow)
            covered |= q_set & follow.tokens
        while len(chosen) < self.sentences:
            pool = [c for c in pool if not any(_overlaps(c, other) for other in chosen)]
            if not pool:
                break
            gains = {id(c): sum(idf.get(t, 0.0) for t in (q_set & c.tokens) - covered) / weight for c in pool}
            complementing = [c for c in pool if gains[id(c)] >= 0.15 and c.score >= 0.1]
            if complementing:
                pick = max(complementing, key=lambda c: c.score * (1 + gains[id(c)]))
            elif pool[0].score >= 0.1:
                pick = pool[0]
            else:
                break
            chosen.append(pick)
            covered |= q_set & pick.tokens
        return chosen

    async def stream(self, question: str, sources: list[Source]) -> AsyncIterator[str]:
        yield self.select(question, sources).text


# Whether the sources answer the question: a logistic model over the features ``select`` computes, fit on the
# docs-qa dev set (its answerable and unanswerable questions) and SQuAD dev (400 questions, each asked with its
# paragraph and with it taken out), each weighing the same: 'voicerag eval answers DIR --cases --json' on both,
# then scripts/fit_abstention.py (its output: benchmarks/quality/abstention_fit.txt). Features are standardised
# with these means and scales.
_MEAN = {
    "similarity": 0.5954,
    "similarity_gap": 0.04,
    "chosen_similarity": 0.5621,
    "overlap": 0.3042,
    "covered": 0.7134,
    "dense": 0.5482,
    "source_coverage": 0.6415,
    "top_source_coverage": 0.5942,
    "best_unit_score": 6.4936,
}
_SCALE = {
    "similarity": 0.1119,
    "similarity_gap": 0.041,
    "chosen_similarity": 0.1308,
    "overlap": 0.1229,
    "covered": 0.1815,
    "dense": 0.1453,
    "source_coverage": 0.2278,
    "top_source_coverage": 0.2542,
    "best_unit_score": 1.0568,
}
_WEIGHT = {
    "similarity": 0.295,
    "similarity_gap": -0.162,
    "chosen_similarity": 0.423,
    "overlap": 0.18,
    "covered": -0.188,
    "dense": -0.137,
    "source_coverage": 0.5,
    "top_source_coverage": 0.603,
    "best_unit_score": 0.09,
}
_BIAS = 0.225


# Which unit answers: a linear score over ``unit_features``, fit listwise (per question, a softmax over its units)
# on documentation questions (docs-qa dev: the unit holds a must_contain string) and SQuAD dev (it holds a gold
# answer), by scripts/fit_answer_ranker.py, whose output (leave-one-project-out figures too) is committed as
# benchmarks/quality/answer_ranker_fit.txt.
_UNIT_WEIGHT: dict[str, float] = {
    "similarity": 1.86,
    "overlap": 3.046,
    "bigrams": 2.016,
    "context_overlap": 0.16,
    "rank": 1.426,
    "source_share": 1.818,
    "order": -0.414,
    "length": 0.821,
    "novel": -1.465,
    "ends_colon": -0.162,
    "is_question": -0.678,
    "kind_list": 0.224,
    "kind_item": -0.264,
    "kind_row": -0.124,
    "kind_code": -0.07,
    "how_code": 0.656,
    "value_number": 1.21,
    "list_list": 0.529,
    "similarity_gap": 1.86,
}


def unit_score(features: dict[str, float]) -> float:
    """The ranker's score of a unit (only differences between a question's units mean anything)."""
    return sum(w * features[name] for name, w in _UNIT_WEIGHT.items())


def answer_probability(features: dict[str, float]) -> float:
    """The model's probability that the sources hold the answer."""
    z = _BIAS + sum(w * (features[name] - _MEAN[name]) / _SCALE[name] for name, w in _WEIGHT.items())
    return 1.0 / (1.0 + math.exp(-z))


def _reading_order(chosen: list[_Candidate]) -> list[_Candidate]:
    """The chosen units (best first) in the order they are read: the best unit's first, since a listener hears the
    opening words most; a unit that directly neighbours another chosen one in its source (nothing but white space
    between them) stays beside it in the document's order, so a sentence and the one it leans on read as written."""
    runs: list[list[_Candidate]] = []
    for candidate in chosen:
        run = next((run for run in runs if any(_adjacent(candidate, other) for other in run)), None)
        if run is None:
            runs.append([candidate])
        else:
            run.append(candidate)
            run.sort(key=lambda c: c.unit.start)
    return [candidate for run in runs for candidate in run]


def _adjacent(a: _Candidate, b: _Candidate) -> bool:
    if a.source is not b.source:
        return False
    first, second = sorted((a, b), key=lambda c: c.unit.start)
    return first.unit.end <= second.unit.start and not a.source.text[first.unit.end : second.unit.start].strip()


def _overlaps(a: _Candidate, b: _Candidate) -> bool:
    same_span = a.source is b.source and a.unit.start < b.unit.end and b.unit.start < a.unit.end
    return same_span or a.unit.text == b.unit.text


def _source_coverage(q_set: set[str], sources: list[Source], idf: dict[str, float], unseen: float) -> list[float]:
    """For each source, the share of the question's words (idf-weighted) found in its title and text: a
    question written from a passage shares its rare words, one the passage cannot answer misses some."""
    asked = q_set - QUESTION_WORDS
    weights = {t: idf.get(t, unseen) for t in asked}
    total = sum(weights.values()) or 1.0
    return [sum(weights[t] for t in asked.intersection(tokenize(f"{s.title} {s.text}"))) / total for s in sources]

"""Extractive answers: no LLM; the sentences of the retrieved chunks that best support the question."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from voicerag.answer.types import Source
from voicerag.documents.chunking import split_sentences
from voicerag.retrieval.lexical import tokenize

NO_ANSWER = "I could not find that in your documents."

# Words that shape a question but are not what it asks about: passages rarely hold them (the lexical stopword
# list is short) and an idf weighs unseen words most, so how much of a question a source covers leaves them out.
QUESTION_WORDS = frozenset(
    tokenize("how what when where who whom whose which why do does did can could would should may might were you me")
)


@dataclass
class _Candidate:
    source: Source
    text: str
    start: int
    end: int
    section: str = ""  # the markdown heading above the sentence in its chunk, if any
    score: float = 0.0
    similarity: float = 0.0
    overlap: float = 0.0
    tokens: frozenset[str] = frozenset()


@dataclass
class Extract:
    """An extractive answer: its text (cited), whether the documents hold an answer, how sure that is (the
    model's probability, or the best word overlap without vectors), and the features it rests on."""

    text: str
    found: bool
    confidence: float
    features: dict[str, float] = field(default_factory=dict)


class ExtractiveGenerator:
    """Answers with the sentences of the top sources that best answer the question: scored by meaning
    (embedding similarity to the question, when given) and by IDF-weighted word and bigram overlap, with a
    prior for the source's rank. Says it found nothing when no sentence is close enough to the question."""

    name = "extractive"

    def __init__(self, sentences: int = 2, max_sources: int = 5, min_confidence: float = 0.2):
        self.sentences = sentences
        self.max_sources = max_sources
        self.min_confidence = min_confidence

    def sentences_of(self, sources: list[Source]) -> list[str]:
        """The candidate sentences as they are embedded (under their section heading), in the order ``select``
        expects their similarities."""
        return [f"{c.section}: {c.text}" if c.section else c.text for c in self._candidates(sources)]

    def _candidates(self, sources: list[Source]) -> list[_Candidate]:
        candidates = []
        for source in sources[: self.max_sources]:
            section = ""
            for sentence in split_sentences(source.text):
                if sentence.text.startswith("#"):
                    section = sentence.text.lstrip("#").strip()
                elif is_prose(sentence.text):
                    candidates.append(_Candidate(source, sentence.text, sentence.start, sentence.end, section))
        return candidates

    def select(
        self,
        question: str,
        sources: list[Source],
        similarities: np.ndarray | None = None,
        corpus_idf: dict[str, float] | None = None,
    ) -> Extract:
        """The answer, with the quoted sentence marked on each source used. ``similarities``: each candidate
        sentence's cosine similarity to the question (``sentences_of`` order); without them, overlap alone.
        ``corpus_idf``: the question words' idf in the searched collections (how much of the question each
        source covers is weighed by it; without it, by the words' rarity among the candidate sentences)."""
        q_tokens = tokenize(question)
        candidates = self._candidates(sources)
        if not candidates or (not q_tokens and similarities is None):
            return Extract(NO_ANSWER, False, 0.0)
        token_lists = [tokenize(c.text) for c in candidates]
        df: dict[str, int] = {}
        for tokens in token_lists:
            for t in set(tokens):
                df[t] = df.get(t, 0) + 1
        n = len(candidates)
        idf = {t: math.log(1 + n / df[t]) for t in df}
        q_set = set(q_tokens)
        coverage = _source_coverage(q_set, sources[: self.max_sources], corpus_idf or idf, math.log(1 + n))
        q_weight = sum(math.log(1 + n) for _ in q_set) or 1.0  # an unseen word weighs the most
        q_bigrams = set(zip(q_tokens, q_tokens[1:], strict=False))
        for i, (candidate, tokens) in enumerate(zip(candidates, token_lists, strict=True)):
            candidate.tokens = frozenset(tokens)
            candidate.overlap = sum(idf.get(t, 0.0) for t in q_set.intersection(tokens)) / q_weight
            bigrams = len(q_bigrams.intersection(zip(tokens, tokens[1:], strict=False))) / max(1, len(q_bigrams))
            length_penalty = 1.0 / (1.0 + 0.02 * max(0, len(tokens) - 25))
            rank_prior = 1.0 / (1.0 + 0.1 * (candidate.source.n - 1))
            lexical = candidate.overlap + 0.3 * bigrams
            if similarities is not None:
                candidate.similarity = float(similarities[i])
                candidate.score = (candidate.similarity + 0.5 * lexical) * length_penalty * rank_prior
            else:
                candidate.similarity = lexical
                candidate.score = lexical * length_penalty * rank_prior
        ranked = sorted(candidates, key=lambda c: -c.score)
        sims = sorted((c.similarity for c in candidates), reverse=True)
        features = {
            "similarity": sims[0],
            "similarity_gap": sims[0] - (sims[1] if len(sims) > 1 else 0.0),
            "chosen_similarity": ranked[0].similarity,
            "overlap": max(c.overlap for c in candidates),
            "covered": sum(1 for t in q_set if t in df) / max(1, len(q_set)),
            "dense": float(sources[0].dense_score or 0.0),
            "source_coverage": max(coverage),
            "top_source_coverage": coverage[0],
        }
        if similarities is not None:
            confidence = answer_probability(features)
            found = confidence >= self.min_confidence
        else:  # no vectors: word overlap alone decides
            confidence = features["overlap"]
            found = confidence >= 0.25
        if not found or ranked[0].score <= 0:
            return Extract(NO_ANSWER, False, round(confidence, 4), features)
        best = self._complete(ranked, q_set, idf)
        best.sort(key=lambda c: (c.source.n, c.start))
        for c in best:
            if c.source.quote is None:
                c.source.quote = c.text
                c.source.quote_start = c.source.start + c.start
                c.source.quote_end = c.source.start + c.end
        return Extract(" ".join(f"{c.text} [{c.source.n}]" for c in best), True, round(confidence, 4), features)

    def _complete(self, ranked: list[_Candidate], q_set: set[str], idf: dict[str, float]) -> list[_Candidate]:
        """The best sentence, then up to ``sentences - 1`` more: a sentence that answers a part of the question
        the chosen ones leave out (its question words not yet covered, IDF-weighted) when one scores at least
        half the best, from any source ("the museum and the library"); otherwise the next best at 75% of it."""
        chosen = [ranked[0]]
        covered = q_set & ranked[0].tokens
        weight = sum(idf.get(t, 0.0) for t in q_set) or 1.0
        pool = ranked[1:12]
        while len(chosen) < self.sentences and pool:
            gains = {id(c): sum(idf.get(t, 0.0) for t in (q_set & c.tokens) - covered) / weight for c in pool}
            complementing = [c for c in pool if c.score >= 0.5 * ranked[0].score and gains[id(c)] >= 0.15]
            if complementing:
                pick = max(complementing, key=lambda c: c.score * (1 + gains[id(c)]))
            elif pool[0].score >= 0.75 * ranked[0].score:
                pick = pool[0]
            else:
                break
            chosen.append(pick)
            covered |= q_set & pick.tokens
            pool.remove(pick)
        return chosen

    async def stream(self, question: str, sources: list[Source]) -> AsyncIterator[str]:
        yield self.select(question, sources).text


# Whether the sources answer the question: a logistic model over the features ``select`` computes, fit on SQuAD
# dev (500 questions, each asked with its paragraph and with it taken out; benchmarks/quality/README.md has the
# commands: 'voicerag eval answers --cases', then scripts/fit_abstention.py). Features are standardised with
# these means and scales.
_MEAN = {
    "similarity": 0.6271,
    "similarity_gap": 0.0693,
    "chosen_similarity": 0.6061,
    "overlap": 0.3156,
    "covered": 0.7098,
    "dense": 0.5451,
    "source_coverage": 0.6602,
    "top_source_coverage": 0.6173,
}
_SCALE = {
    "similarity": 0.1203,
    "similarity_gap": 0.073,
    "chosen_similarity": 0.1313,
    "overlap": 0.1294,
    "covered": 0.1805,
    "dense": 0.1442,
    "source_coverage": 0.2363,
    "top_source_coverage": 0.2638,
}
_WEIGHT = {
    "similarity": 0.231,
    "similarity_gap": 0.381,
    "chosen_similarity": 0.325,
    "overlap": 0.632,
    "covered": 0.092,
    "dense": 0.117,
    "source_coverage": 0.322,
    "top_source_coverage": 0.522,
}
_BIAS = 0.046


def answer_probability(features: dict[str, float]) -> float:
    """The model's probability that the sources hold the answer."""
    z = _BIAS + sum(w * (features[name] - _MEAN[name]) / _SCALE[name] for name, w in _WEIGHT.items())
    return 1.0 / (1.0 + math.exp(-z))


def _source_coverage(q_set: set[str], sources: list[Source], idf: dict[str, float], unseen: float) -> list[float]:
    """For each source, the share of the question's words (idf-weighted) found in its title and text: a
    question written from a passage shares its rare words, one the passage cannot answer misses some."""
    asked = q_set - QUESTION_WORDS
    weights = {t: idf.get(t, unseen) for t in asked}
    total = sum(weights.values()) or 1.0
    return [sum(weights[t] for t in asked.intersection(tokenize(f"{s.title} {s.text}"))) / total for s in sources]


def is_prose(sentence: str) -> bool:
    """Whether a sentence can be an answer: not a heading alone, a code line or a table row."""
    text = sentence.strip()
    if text.startswith(("```", "#", "|", "    ")) or text.count("|") >= 2:
        return False
    return sum(ch.isalpha() for ch in text) >= 8

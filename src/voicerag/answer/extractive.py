"""Extractive answers: no LLM; the sentences of the retrieved chunks that best support the question."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voicerag.answer.types import Source
from voicerag.documents.chunking import split_sentences
from voicerag.retrieval.lexical import tokenize

NO_ANSWER = "I could not find an answer to that in the documents."


@dataclass
class _Candidate:
    source: Source
    text: str
    start: int
    end: int
    score: float


class ExtractiveGenerator:
    """Scores each sentence of the top sources by IDF-weighted overlap with the question (unigrams and
    bigrams of stemmed tokens) plus a prior for the source's rank, and answers with the best ones, cited."""

    name = "extractive"

    def __init__(self, sentences: int = 2, max_sources: int = 5):
        self.sentences = sentences
        self.max_sources = max_sources

    def select(self, question: str, sources: list[Source]) -> tuple[str, list[Source]]:
        """The answer text, and the sources with the quoted sentence marked on each one used."""
        q_tokens = tokenize(question)
        if not sources or not q_tokens:
            return NO_ANSWER, sources
        candidates: list[_Candidate] = []
        for source in sources[: self.max_sources]:
            for sentence in split_sentences(source.text):
                candidates.append(_Candidate(source, sentence.text, sentence.start, sentence.end, 0.0))
        token_lists = [tokenize(c.text) for c in candidates]
        df: dict[str, int] = {}
        for tokens in token_lists:
            for t in set(tokens):
                df[t] = df.get(t, 0) + 1
        n = len(candidates)
        idf = {t: math.log(1 + n / df[t]) for t in df}
        q_set = set(q_tokens)
        q_bigrams = set(zip(q_tokens, q_tokens[1:], strict=False))
        for (
            candidate,
            tokens,
        ) in zip(candidates, token_lists, strict=True):
            overlap = sum(idf.get(t, 0.0) for t in q_set.intersection(tokens))
            bigrams = len(q_bigrams.intersection(zip(tokens, tokens[1:], strict=False)))
            length_penalty = 1.0 / (1.0 + 0.02 * max(0, len(tokens) - 25))
            rank_prior = 1.0 / (1.0 + 0.15 * (candidate.source.n - 1))
            candidate.score = (overlap + 0.5 * bigrams) * length_penalty * rank_prior
        best = sorted(candidates, key=lambda c: -c.score)[: self.sentences]
        best = [c for c in best if c.score > 0]
        if not best:
            return NO_ANSWER, sources
        # keep a second sentence only if it is reasonably strong next to the first
        best = [best[0]] + [c for c in best[1:] if c.score >= 0.5 * best[0].score]
        best.sort(key=lambda c: (c.source.n, c.start))
        for c in best:
            if c.source.quote is None:
                c.source.quote = c.text
                c.source.quote_start = c.source.start + c.start
                c.source.quote_end = c.source.start + c.end
        return " ".join(f"{c.text} [{c.source.n}]" for c in best), sources

    async def stream(self, question: str, sources: list[Source]) -> AsyncIterator[str]:
        text, _ = self.select(question, sources)
        yield text

"""What an answer is made of: its sources (retrieved chunks) and the answer itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Source:
    """A retrieved chunk: where it comes from, how it scored, and its text span in the document."""

    n: int
    document_id: str
    chunk_id: int
    collection: str
    title: str
    score: float
    text: str
    start: int
    end: int
    dense_score: float | None = None
    lexical_score: float | None = None
    quote: str | None = None
    quote_start: int | None = None
    quote_end: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)  # every field is a scalar: no deep copy (asdict was a fifth of a cached ask)


@dataclass
class Answer:
    text: str
    sources: list[Source]
    generator: str
    found: bool = True  # False: the documents hold no answer, and the text says so
    confidence: float | None = None  # the best sentence's similarity to the question (what ``found`` rests on)
    fallback: bool = False
    fallback_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    semantic_similarity: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "sources": [s.to_json() for s in self.sources],
            "generator": self.generator,
            "found": self.found,
            "confidence": self.confidence,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
            "timings_ms": self.timings_ms,
            "cached": self.cached,
            "semantic_similarity": self.semantic_similarity,
        }


class Generator(Protocol):
    """Writes an answer to a question from numbered sources, as a stream of text pieces."""

    name: str

    def stream(self, question: str, sources: list[Source]) -> AsyncIterator[str]: ...

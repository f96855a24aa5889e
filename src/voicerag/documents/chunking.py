"""Split text into sentences, and sentences into overlapping chunks of about N words."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "u.s", "no", "fig", "jr", "sr"}


@dataclass(frozen=True)
class Span:
    """A piece of a document's text with its character offsets."""

    text: str
    start: int
    end: int


def indexed_text(title: str, text: str) -> str:
    """What is embedded and tokenised for a chunk: its document's title, then its text (the title alone names
    what a chunk is about more often than the chunk says it; not repeated when the text starts with it)."""
    return text if not title or text.startswith(title) else f"{title}\n{text}"


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Sentences of ``text`` with their offsets (plus ``offset``). Keeps abbreviations such as 'Dr.' together."""
    spans: list[Span] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        head = text[start : match.start()]
        last_word = head.rsplit(None, 1)[-1].rstrip(".").lower() if head.strip() else ""
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        _add(spans, text, start, match.start(), offset)
        start = match.end()
    _add(spans, text, start, len(text), offset)
    return spans


def _add(spans: list[Span], text: str, start: int, end: int, offset: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        s = start + lead
        spans.append(Span(stripped, s + offset, s + len(stripped) + offset))


def chunk_text(text: str, words: int, overlap_words: int) -> list[Span]:
    """Pack whole sentences into chunks of about ``words`` words; consecutive chunks share ~``overlap_words``.

    A sentence longer than ``words`` is cut at word boundaries.
    """
    pieces: list[Span] = []
    for sentence in split_sentences(text):
        tokens = list(re.finditer(r"\S+", sentence.text))
        if len(tokens) <= words:
            pieces.append(sentence)
            continue
        step = max(1, words - overlap_words)
        for i in range(0, len(tokens), step):
            group = tokens[i : i + words]
            s, e = group[0].start(), group[-1].end()
            pieces.append(Span(sentence.text[s:e], sentence.start + s, sentence.start + e))
            if i + words >= len(tokens):
                break
    chunks: list[Span] = []
    i = 0
    while i < len(pieces):
        count, j = 0, i
        while j < len(pieces) and (j == i or count + _words(pieces[j]) <= words):
            count += _words(pieces[j])
            j += 1
        start, end = pieces[i].start, pieces[j - 1].end
        chunks.append(Span(text[start:end], start, end))
        if j >= len(pieces):
            break
        # step back over trailing sentences worth ~overlap_words, but always move forward
        back, k = 0, j
        while k - 1 > i and back + _words(pieces[k - 1]) <= overlap_words:
            k -= 1
            back += _words(pieces[k])
        i = k
    return chunks


def _words(span: Span) -> int:
    return len(span.text.split())

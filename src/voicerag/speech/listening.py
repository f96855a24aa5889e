"""Text made for listening: what the voice says of an answer. The text answer stays complete; the spoken one
drops what only reads well (citation marks, markdown, headings, code blocks, tables, URLs) and says numbers,
dates, units and abbreviations the way a person would. The first piece is a short clause (at most
``first_chars``, cut at a natural break) so the first audio comes quickly; the rest are whole sentences."""

from __future__ import annotations

import re

from voicerag.documents.chunking import split_sentences

FIRST_PIECE_CHARS = 40  # the first clause spoken: short, so the first audio is ready sooner (a setting)
MAX_PIECE_CHARS = 200  # longer sentences are cut at a comma or a space

_CITATION = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")
_FENCE = re.compile(r"```.*?(```|$)", re.S)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_ABBREVIATIONS = {
    r"\be\.g\.": "for example",
    r"\bi\.e\.": "that is",
    r"\betc\.": "and so on",
    r"\bvs\.?": "versus",
    r"\bapprox\.": "approximately",
    r"\bno\.\s*(?=\d)": "number ",
}
_UNITS = {
    "km/h": "kilometres per hour",
    "mph": "miles per hour",
    "km": "kilometres",
    "kg": "kilograms",
    "cm": "centimetres",
    "mm": "millimetres",
    "m": "metres",
    "g": "grams",
    "ms": "milliseconds",
    "s": "seconds",
    "h": "hours",
    "GB": "gigabytes",
    "MB": "megabytes",
    "KB": "kilobytes",
    "°C": "degrees Celsius",
    "°F": "degrees Fahrenheit",
}
_UNIT = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s?(" + "|".join(re.escape(u) for u in _UNITS) + r")(?![\w/])")


def for_listening(text: str) -> str:
    """``text`` as it should be spoken (one line per block)."""
    text = _CITATION.sub("", text)
    text = _FENCE.sub(" ", text)
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.count("|") >= 2:  # tables are for reading
            continue
        line = re.sub(r"^#{1,6}\s*", "", line)  # a heading is said as a plain phrase
        line = re.sub(r"^(?:[-*+]|\d+[.)])\s+", "", line)  # list markers
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their words
    text = _URL.sub("", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"(\*\*|__|\*|~~)(.+?)\1", r"\2", text)
    text = _ISO_DATE.sub(_spoken_date, text)
    for pattern, spoken in _ABBREVIATIONS.items():
        text = re.sub(pattern, spoken, text, flags=re.I)
    text = _UNIT.sub(lambda m: f"{m.group(1)} {_UNITS[m.group(2)]}", text)
    text = re.sub(r"(\d)\s?%", r"\1 percent", text)
    text = re.sub(r"\$(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", text)
    text = re.sub(r"€(\d[\d,]*(?:\.\d+)?)", r"\1 euros", text)
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)  # 12,000 is said as a number, not a list
    text = re.sub(r"\s*&\s*", " and ", text)
    text = re.sub(r"[ \t]+", " ", text)
    return "\n".join(line.strip() for line in text.splitlines() if any(ch.isalnum() for ch in line))


def _spoken_date(match: re.Match[str]) -> str:
    year, month, day = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f"{_MONTHS[month - 1]} {day}, {year}"


def spoken_pieces(text: str, complete_only: bool = False, first_chars: int = FIRST_PIECE_CHARS) -> list[str]:
    """The pieces to synthesise, in order: the first a clause of at most ``first_chars``, then sentences up to
    200 characters. ``complete_only`` leaves out the last sentence (it may still be growing while an answer
    streams)."""
    spans = [span.text for line in for_listening(text).splitlines() for span in split_sentences(line)]
    if complete_only:
        spans = spans[:-1]
    pieces: list[str] = []
    for sentence in spans:
        sentence = " ".join(sentence.split())
        while len(sentence) > (limit := first_chars if not pieces else MAX_PIECE_CHARS):
            cut = _natural_break(sentence, limit)
            if cut <= 0:
                break
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if any(ch.isalnum() for ch in sentence):
            pieces.append(sentence)
    return pieces


def _natural_break(sentence: str, limit: int) -> int:
    """Where to cut ``sentence`` at or before ``limit``: after a comma, semicolon, colon or dash, else before
    a conjunction, else at a space; 0 when there is no place (a single long word)."""
    for pattern in (r"[,;:]\s", r"\s[-–—]\s", r"\s(?=(?:and|but|or|because|which|while|so)\s)"):
        cuts = [m.end() for m in re.finditer(pattern, sentence[: limit + 1]) if m.end() >= limit // 3]
        if cuts:
            return cuts[-1]
    space = sentence.rfind(" ", 0, limit)
    return space if space > 0 else 0

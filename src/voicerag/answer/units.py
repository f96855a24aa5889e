"""Answer units: the pieces of a chunk an answer can quote, made so that each carries its answer whole.

A chunk's text is blocks separated by blank lines (the loaders make it so): headings (``# ...``), paragraphs,
list items (``- ...``), table rows (``header: cell | header: cell``) and fenced code. The units are:

- a paragraph's sentences, each under the heading above it (its section);
- a lead sentence ending with ":" together with the list it introduces (items joined), or with the short code
  block under it (the code shown);
- each list item whole (a default stated in a second sentence stays with it), with its lead as context;
- each table row (its header is in the row).

Every unit is one contiguous span of the chunk (``start``/``end``), so a source can mark it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

from voicerag.documents.chunking import split_sentences

_BLOCK = re.compile(r"```.*?```|(?:[^\n]|\n(?!\s*\n))+", re.DOTALL)
MAX_CODE_LINES = 6
MAX_CODE_CHARS = 320
MAX_LIST_ITEMS = 12
MAX_LIST_WORDS = 90


@dataclass(frozen=True)
class Unit:
    """A quotable piece: ``text`` as shown (code kept fenced inline), ``context`` for matching (its section and
    lead), its span in the chunk, and its kind (sentence, list, item, row, code)."""

    text: str
    start: int
    end: int
    kind: str
    context: str = ""
    code: str = ""  # the code a how-to unit shows (spoken in words, shown as code)

    @property
    def matched(self) -> str:
        """What is compared with the question: the unit under its context."""
        return f"{self.context}: {self.text}" if self.context else self.text


@dataclass(frozen=True)
class _Block:
    text: str
    start: int
    end: int

    @property
    def kind(self) -> str:
        if self.text.startswith("```"):
            return "code"
        if self.text.startswith("#"):
            return "heading"
        if self.text.startswith("- "):
            return "item"
        if " | " in self.text and ": " in self.text.split(" | ", 1)[0]:
            return "row"
        return "paragraph"


def _blocks(text: str) -> list[_Block]:
    blocks = []
    for match in _BLOCK.finditer(text):
        raw = match.group(0)
        if raw.strip():
            start = match.start() + len(raw) - len(raw.lstrip())
            blocks.append(_Block(raw.strip(), start, match.start() + len(raw.rstrip())))
    return blocks


_LETTER = re.compile(r"[^\W\d_]")


def has_letters(text: str, least: int = 3) -> bool:
    """Whether ``text`` holds at least ``least`` letters (it stops looking once it has them)."""
    return next(islice(_LETTER.finditer(text), least - 1, None), None) is not None


def _code_lines(block: str) -> list[str]:
    code = block.strip("`").strip("\n")
    return [line for line in code.split("\n") if line.strip()]


def short_code(block: str) -> str:
    """A fenced block's code when it is short enough to be an answer whole, else ''."""
    lines = _code_lines(block)
    if not lines or len(lines) > MAX_CODE_LINES or sum(len(line) for line in lines) > MAX_CODE_CHARS:
        return ""
    return "\n".join(lines)


def head_of_code(block: str) -> str:
    """A fenced block's first lines, up to MAX_CODE_LINES and MAX_CODE_CHARS (an example's opening shows how)."""
    kept: list[str] = []
    for line in _code_lines(block):
        if len(kept) >= MAX_CODE_LINES or sum(map(len, kept)) + len(line) > MAX_CODE_CHARS:
            break
        kept.append(line)
    return "\n".join(kept)


def answer_units(text: str) -> list[Unit]:
    """The units of a chunk's text, in order. A chunk is cut once however often it is answered from (the
    last 8,192 texts are kept)."""
    return list(_units(text))


@lru_cache(maxsize=8192)
def _units(text: str) -> tuple[Unit, ...]:
    blocks = _blocks(text)
    units: list[Unit] = []
    section = ""
    i = 0
    while i < len(blocks):
        block = blocks[i]
        kind = block.kind
        if kind == "heading":
            section = block.text.lstrip("#").strip()
            i += 1
            continue
        if kind == "code":
            i += 1
            continue
        if kind == "row":
            cells = block.text.replace(" | ", "; ")
            if has_letters(cells):
                units.append(Unit(cells, block.start, block.end, "row", section))
            i += 1
            continue
        if kind == "item":
            item = _item(block, section, "")
            if item.text.endswith(":") and (j := _introduces(blocks, i + 1, item.text, item.start, section, units)):
                units.append(item)
                i = j
                continue
            units.append(item)
            i += 1
            continue
        sentences = [s for s in split_sentences(block.text, block.start) if has_letters(s.text)]
        for s in sentences[:-1]:
            if has_letters(s.text, 8):
                units.append(Unit(s.text, s.start, s.end, "sentence", section))
        if not sentences:
            i += 1
            continue
        last = sentences[-1]
        if j := _introduces(blocks, i + 1, last.text, last.start, section, units):
            i = j
            continue
        if has_letters(last.text, 8):
            units.append(Unit(last.text, last.start, last.end, "sentence", section))
        i += 1
    return tuple(units)


def _introduces(blocks: list[_Block], i: int, lead: str, start: int, section: str, units: list[Unit]) -> int:
    """When ``lead`` introduces what follows it (a list, table rows, or code), add the units that carry both and
    return the index of the block after them; else 0."""
    following = blocks[i] if i < len(blocks) else None
    if following is None:
        return 0
    if following.kind in ("item", "row") and (lead.endswith(":") or following.kind == "row"):
        j = i
        items: list[_Block] = []
        while j < len(blocks) and blocks[j].kind in (following.kind, "code") and len(items) < MAX_LIST_ITEMS:
            if blocks[j].kind == following.kind:
                items.append(blocks[j])
            j += 1
        if not lead.endswith(":"):
            return 0
        listed = _join_items(lead, items)
        if listed is not None:
            units.append(Unit(listed[0], start, listed[1], "list", section))
        for item in items:
            if item.kind == "item":
                units.append(_item(item, section, lead))
            else:
                units.append(Unit(item.text.replace(" | ", "; "), item.start, item.end, "row", section))
        return j
    if following.kind == "code" and (lead.endswith(":") or short_code(following.text)):
        code = head_of_code(following.text)
        if not code:
            return 0
        shown = f"{lead} `{code}`" if "\n" not in code else f"{lead}\n```\n{code}\n```"
        units.append(Unit(shown, start, following.end, "code", section, code))
        return i + 1
    return 0


def _item(block: _Block, section: str, lead: str) -> Unit:
    text = block.text[2:].strip()
    context = f"{section}: {lead}" if section and lead else section or lead
    return Unit(text, block.start + 2, block.end, "item", context)


def _join_items(lead: str, items: list[_Block]) -> tuple[str, int] | None:
    """The lead with its items ("a; b; c"), cut at MAX_LIST_WORDS, and where the span ends."""
    parts: list[str] = []
    words = len(lead.split())
    end = None
    for item in items:
        text = item.text[2:] if item.kind == "item" else ", ".join(item.text.split(" | ")[:2])
        text = text.strip().rstrip(".;")
        first = split_sentences(text)[0].text.rstrip(".;") if text else text
        if words + len(first.split()) > MAX_LIST_WORDS and parts:
            break
        parts.append(first)
        words += len(first.split())
        end = item.end
    if not parts or end is None:
        return None
    return f"{lead} {'; '.join(parts)}.", end

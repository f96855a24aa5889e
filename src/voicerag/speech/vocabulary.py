"""A collection's own names, for the speech recogniser: the product, library and identifier names its documents
use ("Starlette", "Pydantic", "CORSMiddleware"), which a general model hears as common words ("store let's",
"pedantic", "course middleware"). Given to Whisper as its prompt, they tilt it toward those spellings."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

# A word written with a capital: Title case or camelCase (a lower-case letter after it), or CAPS of two or more
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*\b|\b[A-Z]{2,}[a-z]?\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n\s*(?:[-*#>]+\s*)?|\|\s*)([A-Z][A-Za-z0-9]*)")


def names_in(texts: Iterable[str], limit: int = 40) -> list[str]:
    """The names the texts use most (by how many texts hold them), most used first: words written with a capital
    inside a sentence (not only at its start) in at least two texts, whose lower case is not an everyday word
    (not a whole word of the embedding model's English vocabulary: "Using", "Hello" and "Windows" are, so the
    model hears them already; "Starlette", "Pydantic" and "CORSMiddleware" are not)."""
    everyday = _everyday_words()
    held: Counter[str] = Counter()
    for text in texts:
        starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
        held.update({m.group(0) for m in _NAME.finditer(text) if m.start() not in starts})
    names = [name for name, count in held.most_common() if count >= 2 and name.lower() not in everyday]
    return names[:limit]


@lru_cache(maxsize=1)
def _everyday_words() -> frozenset[str]:
    """The whole words of the embedding model's WordPiece vocabulary (its tokenizer ships with the package)."""
    path = resources.files("voicerag.retrieval") / "assets" / "tokenizer.json"
    vocab = json.loads(path.read_text())["model"]["vocab"]
    return frozenset(word for word in vocab if word.isalpha())


def prompt_of(names: list[str]) -> str | None:
    """The recogniser's prompt for these names (None when there are none)."""
    return ", ".join(names) + "." if names else None

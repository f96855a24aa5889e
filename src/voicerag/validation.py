"""Checks shared by every text that comes in (questions, documents, text to speak): what Python accepts as a
``str`` but no database, cache key or voice can take."""

from __future__ import annotations

import re

from voicerag.errors import InvalidInput

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _valid_unicode(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what} holds an invalid character at position {exc.start} (a lone UTF-16 surrogate); "
            "send valid Unicode text"
        ) from None


def plain_text(value: str, what: str) -> str:
    """``value`` if it is valid Unicode text without control characters; else a 4xx that names ``what``."""
    _valid_unicode(value, what)
    found = _CONTROL.search(value)
    if found is not None:
        raise InvalidInput(
            f"{what} holds a control character (U+{ord(found.group()):04X}) at position {found.start()}; "
            "send plain text (tabs and line breaks are fine)"
        )
    return value


def clean_document_text(value: str, what: str) -> str:
    """Document text as stored: NUL and other control characters (common in extracted PDF text) become
    spaces; invalid Unicode is refused."""
    _valid_unicode(value, what)
    return _CONTROL.sub(" ", value)

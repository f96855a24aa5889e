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


def collection_names(
    collection: object, collections: object, fields: str = "'collection' or 'collections'"
) -> list[str]:
    """The collections a request names: ``collections`` (a list, or a comma-separated string in a form) and
    ``collection``, in that order; a 4xx naming ``fields`` when there are none."""
    if isinstance(collections, str):
        listed = [name.strip() for name in collections.split(",") if name.strip()]
    elif isinstance(collections, list | tuple):
        listed = [str(name) for name in collections]
    elif collections is None:
        listed = []
    else:
        raise InvalidInput(f"'collections' is a list of collection names (got {type(collections).__name__})")
    names = listed + ([str(collection)] if collection else [])
    if not names:
        raise InvalidInput(f"name the collection to ask: {fields}")
    return names

"""One rule for the collections a request names, in JSON bodies, forms and the voice websocket's start."""

from __future__ import annotations

import pytest

from voicerag.errors import InvalidInput
from voicerag.validation import collection_names


def test_collections_then_collection_from_lists_and_comma_separated_forms() -> None:
    assert collection_names("kb", ["a", "b"]) == ["a", "b", "kb"]
    assert collection_names(None, " a, b ,,") == ["a", "b"]
    assert collection_names("kb", None) == ["kb"]


def test_none_named_or_a_wrong_shape_is_a_4xx_that_says_which_fields() -> None:
    with pytest.raises(InvalidInput, match="start: 'collection' or 'collections'"):
        collection_names(None, [], "start: 'collection' or 'collections'")
    with pytest.raises(InvalidInput, match="list of collection names"):
        collection_names(None, {"a": 1})

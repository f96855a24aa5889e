"""The voice websocket's control messages are parsed once, into typed messages; anything else gets a 4xx that
says what is accepted."""

from __future__ import annotations

import json

import pytest

from voicerag.api.voice_wire import Ask, Cancel, End, Start, parse_control
from voicerag.errors import InvalidInput


def test_a_start_is_parsed_into_the_turn_options() -> None:
    start = parse_control(
        json.dumps(
            {
                "type": "start",
                "collections": ["a", "b"],
                "sample_rate": 48000.0,
                "mode": "lexical",
                "k": 3,
                "language": "en",
                "speak": False,
                "api_key": "vr_x",
            }
        )
    )
    assert isinstance(start, Start) and start.api_key == "vr_x"
    o = start.options
    assert (o.collections, o.sample_rate, o.mode, o.k, o.language, o.speak) == (
        ["a", "b"],
        48000,
        "lexical",
        3,
        "en",
        False,
    )
    plain = parse_control('{"type": "start", "collection": "docs"}')
    assert isinstance(plain, Start) and plain.api_key is None
    assert (plain.options.collections, plain.options.sample_rate, plain.options.speak) == (["docs"], 16000, True)


def test_the_other_messages() -> None:
    assert parse_control('{"type": "end"}') == End()
    assert parse_control('{"type": "cancel"}') == Cancel()
    assert parse_control('{"type": "ask", "text": "What is X?"}') == Ask("What is X?")


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("not json", "JSON objects with a 'type'"),
        ("[1, 2]", "one of start, end, ask, cancel"),
        ('{"type": "stop"}', "one of start, end, ask, cancel"),
        ('{"type": "start"}', "'collection' or 'collections'"),
        ('{"type": "start", "collection": "d", "mode": "fuzzy"}', "mode is one of dense, lexical, hybrid"),
        ('{"type": "start", "collection": "d", "k": "five"}', "k is a whole number"),
        ('{"type": "start", "collection": "d", "sample_rate": "fast"}', "sample_rate is a whole number"),
        ('{"type": "start", "collection": "d", "sample_rate": true}', "sample_rate is a whole number"),
    ],
)
def test_a_bad_message_says_what_is_accepted(message: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_control(message)

"""The voice websocket's wire format: JSON control messages in, parsed once into typed messages; the turn's
typed frames out, as JSON messages (an answer's audio as a JSON header, then a binary frame of 16-bit PCM)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket

from voicerag.errors import InvalidInput
from voicerag.events import Audio, Delta, Done, TurnFrame
from voicerag.speech.audio import SAMPLE_RATE
from voicerag.validation import collection_names
from voicerag.voice import TurnOptions

MODES = ("dense", "lexical", "hybrid")


@dataclass(frozen=True)
class Start:
    """``{"type": "start", "collection": NAME, "sample_rate": 16000, "language": "en", "speak": true, "mode": ...,
    "k": ..., "api_key": ...}``."""

    options: TurnOptions
    api_key: str | None


@dataclass(frozen=True)
class End:
    """``{"type": "end"}``: the turn is over (silence ends it too)."""


@dataclass(frozen=True)
class Ask:
    """``{"type": "ask", "text": ...}``: a typed question in the same session."""

    text: str


@dataclass(frozen=True)
class Cancel:
    """``{"type": "cancel"}``: stop the answer in progress."""


Control = Start | End | Ask | Cancel


def parse_control(text: str) -> Control:
    """A control message, checked: a 4xx saying what is wrong and what is accepted."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidInput("control messages are JSON objects with a 'type'") from None
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "start":
        return _start(message)
    if kind == "end":
        return End()
    if kind == "ask":
        return Ask(str(message.get("text") or ""))
    if kind == "cancel":
        return Cancel()
    raise InvalidInput(f"unknown message type {kind!r}; one of start, end, ask, cancel")


def _start(message: dict[str, Any]) -> Start:
    names = collection_names(
        message.get("collection"), message.get("collections"), "start: 'collection' or 'collections'"
    )
    rate, k, mode = message.get("sample_rate", SAMPLE_RATE), message.get("k"), message.get("mode")
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)  # a browser's AudioContext rate, sent as a JavaScript number
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise InvalidInput(f"start: sample_rate is a whole number of Hz (got {rate!r})")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool)):
        raise InvalidInput(f"start: k is a whole number of sources (got {k!r})")
    if mode is not None and mode not in MODES:
        raise InvalidInput(f"start: mode is one of {', '.join(MODES)} (got {mode!r})")
    language, key = message.get("language"), message.get("api_key")
    options = TurnOptions(names, rate, mode, k, str(language) if language else None, bool(message.get("speak", True)))
    return Start(options, key if isinstance(key, str) else None)


class WireFrames:
    """Sends a turn's frames over the websocket as its JSON messages."""

    def __init__(self, websocket: WebSocket):
        self.websocket = websocket

    async def __call__(self, frame: TurnFrame) -> None:
        if isinstance(frame, Done):
            await self.websocket.send_json({"type": "done", "answer": frame.to_json(), "timings_ms": frame.timings_ms})
            return
        kind = "answer_delta" if isinstance(frame, Delta) else frame.kind
        await self.websocket.send_json({"type": kind} | frame.to_json())
        if isinstance(frame, Audio):
            await self.websocket.send_bytes(frame.speech.pcm)

"""What an answer stream and a voice turn emit, as typed events. The pipeline and the voice turn yield them;
the faces (api/ routes, the voice websocket session, the OpenAI routes) turn them into SSE, frames or chunks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from voicerag.answer.types import Answer

if TYPE_CHECKING:
    from voicerag.speech.tts import Speech


@dataclass(frozen=True)
class Sources:
    """The sources the answer rests on (as JSON), before any text."""

    sources: list[dict[str, Any]]
    kind: ClassVar[str] = "sources"

    def to_json(self) -> dict[str, Any]:
        return {"sources": self.sources}


@dataclass(frozen=True)
class Delta:
    """The next piece of the answer's text."""

    text: str
    kind: ClassVar[str] = "delta"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True)
class Fallback:
    """The LLM failed: ``text`` (the extractive answer) replaces what was streamed so far."""

    reason: str
    text: str
    kind: ClassVar[str] = "fallback"

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "text": self.text}


@dataclass(frozen=True)
class Audio:
    """One spoken sentence of a voice turn's answer, in order (``index``)."""

    index: int
    sentence: str
    speech: Speech
    cached: bool
    kind: ClassVar[str] = "audio"

    def to_json(self) -> dict[str, Any]:
        """The frame announcing the sentence's PCM (sent right after it as bytes)."""
        return {
            "index": self.index,
            "sentence": self.sentence,
            "cached": self.cached,
            "sample_rate": self.speech.sample_rate,
            "format": "pcm16",
            "bytes": len(self.speech.pcm),
        }


@dataclass(frozen=True)
class Done:
    """The whole answer, last; a voice turn adds its stage timings."""

    answer: Answer
    timings_ms: dict[str, float] | None = None
    kind: ClassVar[str] = "done"

    def to_json(self) -> dict[str, Any]:
        return self.answer.to_json()


@dataclass(frozen=True)
class Ready:
    """A voice turn's session started: the audio it takes."""

    sample_rate: int
    formats: tuple[str, ...] = ("pcm16",)
    kind: ClassVar[str] = "ready"

    def to_json(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "formats": list(self.formats)}


@dataclass(frozen=True)
class PartialTranscript:
    """What the speaker has said so far (while speaking; may change)."""

    text: str
    kind: ClassVar[str] = "partial_transcript"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True)
class FinalTranscript:
    """The turn's question, as it will be answered."""

    text: str
    cached: bool
    timings_ms: dict[str, float]
    kind: ClassVar[str] = "final_transcript"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "cached": self.cached, "timings_ms": self.timings_ms}


@dataclass(frozen=True)
class Interrupted:
    """The answer in progress was stopped: barge-in, cancel, a new question or a new session."""

    reason: str
    kind: ClassVar[str] = "interrupted"

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason}


@dataclass(frozen=True)
class TurnError:
    """What went wrong with a turn (an HTTP-like status and what to do about it); the session goes on."""

    status: int
    detail: str
    kind: ClassVar[str] = "error"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail}


AnswerEvent = Sources | Delta | Fallback | Done
VoiceEvent = Sources | Delta | Fallback | Audio | Done
TurnFrame = Ready | PartialTranscript | FinalTranscript | Interrupted | TurnError | VoiceEvent

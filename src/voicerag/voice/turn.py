"""A voice turn over a stream: 16-bit mono PCM in, typed frames out (``events.TurnFrame``: transcripts, the
answer's text and audio, interruptions, errors). The transport turns its wire messages into calls here and the
frames into wire messages (``api/voice_wire.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voicerag.config import SearchMode
from voicerag.errors import InvalidInput, VoiceRAGError
from voicerag.events import (
    Audio,
    Done,
    FinalTranscript,
    Interrupted,
    PartialTranscript,
    Ready,
    TurnError,
    TurnFrame,
)
from voicerag.speech.audio import SAMPLE_RATE, pcm16_to_float, resample_pcm16
from voicerag.speech.stt import Transcript, speech_timestamps
from voicerag.speech.turn_end import finished_probability
from voicerag.voice.agent import VoiceAgent

log = logging.getLogger(__name__)

Emit = Callable[[TurnFrame], Awaitable[None]]


@dataclass(frozen=True)
class TurnOptions:
    """What a session's ``start`` asks for: the collections (authorised by the transport), the audio's sample
    rate, and how to answer."""

    collections: list[str]
    sample_rate: int = SAMPLE_RATE
    mode: SearchMode | None = None
    k: int | None = None
    language: str | None = None
    speak: bool = True


class VoiceSession:
    """One streaming conversation (the websocket's state). Audio arrives as 16-bit mono PCM frames.

    Endpointing does not wait idle: once ``stt_speculate_silence_s`` of silence follows speech, the final
    transcription starts on the speech so far, and its answer (text and the first audio) is prepared but held.
    What was said decides how long the turn waits: ``stt_end_silence_s`` of silence ends it and releases the held
    answer at once, unless the end-of-turn model reads the speculative transcript as unfinished ("How do I set
    the"), when it waits ``stt_unfinished_silence_s`` for the speaker to go on. Speech that resumes drops the
    speculation (a job still queued never runs; a local model already running it stops at its next step). Partial
    transcripts cover a bounded tail (``stt_partial_window_s``), at most one STT job runs per session, and
    none starts once the speaker has paused. Speech over a playing answer cancels it (barge-in)."""

    CHECK_EVERY_S = 0.1  # voice activity is checked on each new tenth of a second of audio

    def __init__(self, agent: VoiceAgent, emit: Emit):
        self.agent = agent
        self.speech = agent.speech
        settings = agent.speech.settings
        self.partial_every = int(settings.stt_partial_interval_s * SAMPLE_RATE)
        self.partial_window = int(settings.stt_partial_window_s * SAMPLE_RATE)
        self.end_silence = int(settings.stt_end_silence_s * SAMPLE_RATE)
        self.unfinished_silence = int(max(settings.stt_unfinished_silence_s, settings.stt_end_silence_s) * SAMPLE_RATE)
        self.speculate_silence = min(int(settings.stt_speculate_silence_s * SAMPLE_RATE), self.end_silence)
        self.finished_threshold = settings.stt_turn_end_threshold
        self.max_samples = int(settings.max_audio_seconds * SAMPLE_RATE)
        self.emit = emit
        self.options: TurnOptions | None = None
        self.buffer: list[np.ndarray] = []
        self.samples = 0
        self.checked_at = 0
        self.heard_speech = False
        self.partial_task: asyncio.Task[None] | None = None
        self.answer_task: asyncio.Task[None] | None = None
        self.partials_sent = -1
        self.ended_by_silence = False
        self.speculation: _Speculation | None = None
        self.speech_ended_at: float | None = None  # wall time the turn's speech ended (real-time audio)
        self.prompt: str | None = None  # the recogniser's prompt: the collections' names

    # ---- control messages -------------------------------------------------------------------------------

    async def start(self, options: TurnOptions) -> None:
        """A new session (or the same one restarted): what it listens to and how it answers."""
        if not 8_000 <= options.sample_rate <= 96_000:
            raise InvalidInput(f"start: sample_rate must be between 8000 and 96000 Hz (got {options.sample_rate})")
        self.options = options
        await self.interrupt("new session")
        self.reset()
        try:  # the collections' names, for the recogniser; an unknown collection is reported when asked
            self.prompt = await self.agent.speech_prompt(options.collections)
        except VoiceRAGError:
            self.prompt = None
        await self.emit(Ready(SAMPLE_RATE))

    def reset(self) -> None:
        self.buffer, self.samples, self.checked_at, self.heard_speech = [], 0, 0, False
        self.partials_sent = -1
        self.speech_ended_at = None
        self._drop_speculation()

    async def interrupt(self, reason: str) -> None:
        """Cancel the answer in progress (barge-in, cancel, or a new question)."""
        if self.answer_task is not None and not self.answer_task.done():
            self.answer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.answer_task
            await self.emit(Interrupted(reason))
        self.answer_task = None

    async def ask_text(self, text: str) -> None:
        """A typed question in the same session: answered (and spoken) like a spoken one."""
        self._require_started()
        await self.interrupt("new question")
        self.reset()
        self.answer_task = asyncio.create_task(self._answer(text, {}, time.perf_counter()))

    # ---- audio ------------------------------------------------------------------------------------------

    async def audio(self, frame: bytes) -> None:
        """A frame of 16-bit mono PCM at the session's sample rate."""
        options = self._require_started()
        pcm = resample_pcm16(frame, options.sample_rate, SAMPLE_RATE)
        samples = pcm16_to_float(pcm)
        if not samples.size:
            return
        self.buffer.append(samples)
        self.samples += samples.size
        if self.samples > self.max_samples:
            self.reset()
            raise InvalidInput(
                f"the spoken question is longer than {self.max_samples // SAMPLE_RATE} s (VOICERAG_MAX_AUDIO_SECONDS)"
            )
        if self.samples - self.checked_at >= int(self.CHECK_EVERY_S * SAMPLE_RATE):
            self.checked_at = self.samples
            await self._check()

    async def _check(self) -> None:
        """Voice activity in the latest window only (constant cost however long the turn): speech over a playing
        answer interrupts it; a short pause after speech starts the speculative final; a long one ends the
        turn."""
        audio = np.concatenate(self.buffer)
        self.buffer = [audio]
        start = max(0, audio.size - self.unfinished_silence - SAMPLE_RATE)
        speech = await asyncio.to_thread(speech_timestamps, audio[start:], 100)
        if not speech:
            if self.heard_speech:  # the whole window is silent, after speech
                self.ended_by_silence = True
                await self.end()
            elif self.samples > 3 * SAMPLE_RATE:  # nothing said yet: keep only the last second of silence
                self.buffer = [audio[-SAMPLE_RATE:]]
                self.samples = self.checked_at = SAMPLE_RATE
            return
        if self.answer_task is not None and not self.answer_task.done():
            await self.interrupt("barge-in")
        self.heard_speech = True
        self.ended_by_silence = False
        speech_end = start + speech[-1]["end"]
        pause = audio.size - speech_end
        self.speech_ended_at = time.perf_counter() - pause / SAMPLE_RATE
        speculation = self.speculation
        unfinished = speculation is not None and speculation.unfinished
        # the words decide the wait: until the speculative transcript is read, only the longer silence ends a turn
        unread = speculation is not None and speculation.task is not None and not speculation.task.done()
        if pause >= (self.unfinished_silence if unfinished or unread else self.end_silence):
            self.ended_by_silence = True
            await self.end()
        elif pause >= self.speculate_silence:
            pad = SAMPLE_RATE // 10  # the speculation hears this much past the speech end: VAD jitter is no news
            if self.speculation is None or speech_end > self.speculation.speech_end + pad:
                self._speculate(audio[: min(audio.size, speech_end + pad)], speech_end)
        else:
            self._drop_speculation()  # still speaking (or speaking again)
            self._maybe_partial(audio)

    def _maybe_partial(self, audio: np.ndarray) -> None:
        idle = self.partial_task is None or self.partial_task.done()
        due = self.samples >= self.partial_every and self.samples // self.partial_every != self.partials_sent
        if idle and due and self.speculation is None:
            self.partials_sent = self.samples // self.partial_every
            self.partial_task = asyncio.create_task(self._partial(audio[-self.partial_window :]))

    async def _partial(self, audio: np.ndarray) -> None:
        try:
            transcript = await self.speech.transcribe(
                audio, self._require_started().language, cache=False, prompt=self.prompt
            )
            if transcript.text and self.buffer and self.speculation is None:
                await self.emit(PartialTranscript(transcript.text))
        except Exception as exc:  # a failed partial is not fatal: the final transcript decides
            log.debug("partial transcript failed: %s", exc)

    def _speculate(self, audio: np.ndarray, speech_end: int) -> None:
        """Start the final transcription (and then the held answer) on the speech so far."""
        self._drop_speculation()
        if self.partial_task is not None and not self.partial_task.done():
            self.partial_task.cancel()  # queued: never runs; running: the local model stops at its next step
        speculation = _Speculation(speech_end, asyncio.Event(), {})
        speculation.task = asyncio.create_task(self._transcribe_and_prepare(audio, speculation))
        self.speculation = speculation

    async def _transcribe_and_prepare(self, audio: np.ndarray, speculation: _Speculation) -> Transcript:
        transcript = await self.speech.transcribe(
            audio, self._require_started().language, speculation.timings, prompt=self.prompt
        )
        if transcript.text.strip() and self.speculation is speculation:
            ended = self.speech_ended_at or time.perf_counter()
            speculation.answer = asyncio.create_task(
                self._answer(transcript.text, speculation.timings, ended, speculation.confirmed)
            )
            speculation.finished_p = finished_probability(transcript.text)
            speculation.unfinished = speculation.finished_p < self.finished_threshold
        return transcript

    def _drop_speculation(self) -> None:
        if self.speculation is not None:
            for task in (self.speculation.task, self.speculation.answer):
                if task is not None:
                    task.cancel()
            self.speculation = None

    async def end(self) -> None:
        """The turn is over: final transcript (the speculative one when the speech has not changed since), then
        the answer (text and audio) in the background."""
        options = self._require_started()
        if not self.buffer:
            return
        ended = self.speech_ended_at or time.perf_counter()
        audio = np.concatenate(self.buffer)
        speculation, self.speculation = self.speculation, None
        heard = self.heard_speech or bool(await asyncio.to_thread(speech_timestamps, audio))
        self.reset()
        if not heard:  # only silence since the last turn
            if not self.ended_by_silence:
                await self.emit(TurnError(422, "no speech was heard; speak, then end"))
            return
        if self.partial_task is not None:
            self.partial_task.cancel()
        if speculation is not None and speculation.task is not None:
            transcript, timings = await speculation.task, speculation.timings
            timings["speculative"] = 1.0
            if speculation.finished_p is not None:
                timings["turn_finished_p"] = round(speculation.finished_p, 3)
        else:
            timings = {}
            transcript = await self.speech.transcribe(audio, options.language, timings, prompt=self.prompt)
        await self.emit(FinalTranscript(transcript.text, transcript.cached, timings))
        if not transcript.text.strip():
            await self.emit(TurnError(422, "no speech was recognised; ask again"))
            return
        if speculation is not None and speculation.answer is not None:
            speculation.confirmed.set()  # the held answer goes out now
            self.answer_task = speculation.answer
        else:
            self.answer_task = asyncio.create_task(self._answer(transcript.text, timings, ended))

    async def _answer(
        self, question: str, timings: dict[str, float], ended: float, hold: asyncio.Event | None = None
    ) -> None:
        """Stream the answer; with ``hold``, prepare it (text and first audio) but send nothing until it is set."""
        o = self._require_started()
        first_audio = True
        try:
            async for event in self.agent.answer_events(question, o.collections, o.mode, o.k, timings, o.speak):
                if hold is not None:
                    await hold.wait()
                if isinstance(event, Audio) and first_audio:
                    timings["voice_to_first_audio"] = round((time.perf_counter() - ended) * 1000, 3)
                    first_audio = False
                await self.emit(Done(event.answer, timings) if isinstance(event, Done) else event)
        except asyncio.CancelledError:
            raise
        except VoiceRAGError as exc:
            await self.emit(TurnError(exc.status, exc.detail))
        except Exception as exc:
            log.exception("voice answer failed")
            await self.emit(TurnError(500, f"{type(exc).__name__}: {exc}"))

    def _require_started(self) -> TurnOptions:
        if self.options is None:
            raise InvalidInput('send {"type": "start", "collection": NAME} first')
        return self.options

    async def close(self) -> None:
        self._drop_speculation()
        for task in (self.partial_task, self.answer_task):
            if task is not None:
                task.cancel()


@dataclass
class _Speculation:
    """A final transcription started at a pause, and the answer prepared from it, held until the turn ends."""

    speech_end: int  # the sample where the speech it heard ended
    confirmed: asyncio.Event
    timings: dict[str, float]
    task: asyncio.Task[Transcript] | None = None
    answer: asyncio.Task[None] | None = None
    finished_p: float | None = None  # the end-of-turn model's reading of its transcript
    unfinished: bool = False  # ... below the threshold: the turn waits the longer silence

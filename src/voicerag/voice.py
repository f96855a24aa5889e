"""Voice turns: a spoken (or typed) question -> transcript -> grounded answer -> spoken answer, streamed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voicerag.answer.types import Answer
from voicerag.config import SearchMode
from voicerag.errors import InvalidInput, VoiceRAGError
from voicerag.events import Audio, Delta, Done, Fallback, VoiceEvent
from voicerag.pipeline import Pipeline
from voicerag.speech.audio import SAMPLE_RATE, pcm16_to_float, resample_pcm16
from voicerag.speech.listening import spoken_pieces
from voicerag.speech.service import SpeechService
from voicerag.speech.stt import Transcript, speech_timestamps
from voicerag.speech.tts import Speech, join_speech
from voicerag.speech.turn_end import finished_probability

log = logging.getLogger(__name__)

_END = object()


class VoiceAgent:
    """Answers questions aloud: the answer's sentences are spoken as soon as each is complete, while the
    rest of the answer is still being written."""

    def __init__(self, pipeline: Pipeline, speech: SpeechService):
        self.pipeline = pipeline
        self.speech = speech

    async def answer_events(
        self,
        question: str,
        collections: list[str],
        mode: SearchMode | None = None,
        k: int | None = None,
        timings: dict[str, float] | None = None,
        speak: bool = True,
    ) -> AsyncIterator[VoiceEvent]:
        """Events: ``Sources``, ``Delta``, ``Fallback`` (the text as the pipeline streams it), ``Audio`` (each spoken
        sentence), then ``Done`` with the turn's timings."""
        timings = {} if timings is None else timings
        started = time.perf_counter()
        out: asyncio.Queue[Any] = asyncio.Queue()
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        result: dict[str, Answer] = {}

        budget = self.speech.settings.voice_max_spoken_chars
        spoken = 0
        namespace = "collections:" + ",".join(sorted(set(collections)))  # answers' audio stays with their sources

        async def say_next(pieces: list[str]) -> None:
            """Queue sentences for speech until the spoken budget is used (the text answer stays whole)."""
            nonlocal spoken
            for sentence in pieces:
                if spoken >= budget:
                    return
                spoken += len(sentence)
                await sentences.put(sentence)

        async def write() -> None:
            text, queued = "", 0
            try:
                async for event in self.pipeline.ask_stream(question, collections, mode, k):
                    if isinstance(event, Done):
                        result["answer"] = event.answer
                        text = event.answer.text
                        break
                    if isinstance(event, Delta):
                        text += event.text
                    elif isinstance(event, Fallback):
                        text, queued = event.text, 0
                    await out.put(event)
                    complete = spoken_pieces(text, True, self.speech.settings.voice_first_piece_chars) if speak else []
                    await say_next(complete[queued:])
                    queued = max(queued, len(complete))
                if speak:
                    await say_next(
                        spoken_pieces(text, first_chars=self.speech.settings.voice_first_piece_chars)[queued:]
                    )
            except BaseException as exc:
                await out.put(exc)
                raise
            finally:
                await sentences.put(None)
                await out.put(_END)

        async def say() -> None:
            index = 0
            try:
                while (sentence := await sentences.get()) is not None:
                    speech, hit = await self.speech.speak_sentence(sentence, namespace=namespace)
                    if index == 0:
                        timings["tts_first_audio"] = round((time.perf_counter() - started) * 1000, 3)
                    await out.put(Audio(index, sentence, speech, hit))
                    index += 1
            except BaseException as exc:
                await out.put(exc)
                raise
            finally:
                await out.put(_END)

        tasks = [asyncio.create_task(write()), asyncio.create_task(say())]
        try:
            ended = 0
            while ended < len(tasks):
                item = await out.get()
                if item is _END:
                    ended += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
            timings["answer_and_speech"] = round((time.perf_counter() - started) * 1000, 3)
            answer = result["answer"]
            for stage, ms in answer.timings_ms.items():  # search, embed, generate...: the answer's own stages
                timings["answer" if stage == "total" else stage] = ms
            yield Done(answer, timings)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def ask_aloud(
        self,
        audio_file: bytes,
        collections: list[str],
        mode: SearchMode | None = None,
        k: int | None = None,
        language: str | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[Transcript, dict[str, Any], Speech]:
        """A recorded question (any audio file) -> its transcript, the answer (JSON) and the spoken answer."""
        timings = {} if timings is None else timings
        transcript = await self.speech.transcribe_file(audio_file, language, timings)
        if not transcript.text:
            raise InvalidInput(
                "no speech was recognised in the audio; record the question again, closer to the microphone"
            )
        pieces: list[Speech] = []
        answer: dict[str, Any] = {}
        async for event in self.answer_events(transcript.text, collections, mode, k, timings):
            if isinstance(event, Audio):
                pieces.append(event.speech)
            elif isinstance(event, Done):
                answer = event.answer.to_json()
        return transcript, answer, join_speech(pieces)


Send = Callable[[dict[str, Any]], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]


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

    def __init__(self, agent: VoiceAgent, send: Send, send_bytes: SendBytes):
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
        self.send = send
        self.send_bytes = send_bytes
        self.options: dict[str, Any] = {}
        self.sample_rate = SAMPLE_RATE
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

    # ---- control messages -------------------------------------------------------------------------------

    async def start(self, message: dict[str, Any], names: list[str]) -> None:
        """``{"type": "start", "collection": ..., "sample_rate": 16000, "language": "en", "speak": true}``, with the
        collections it names (``validation.collection_names``, read once by the transport to authorise them)."""
        rate = int(message.get("sample_rate", SAMPLE_RATE))
        if not 8_000 <= rate <= 96_000:
            raise InvalidInput(f"start: sample_rate must be between 8000 and 96000 Hz (got {rate})")
        self.sample_rate = rate
        self.options = {
            "collections": names,
            "mode": message.get("mode"),
            "k": message.get("k"),
            "language": message.get("language"),
            "speak": bool(message.get("speak", True)),
        }
        await self.interrupt("new session")
        self.reset()
        await self.send({"type": "ready", "sample_rate": SAMPLE_RATE, "formats": ["pcm16"]})

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
            await self.send({"type": "interrupted", "reason": reason})
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
        self._require_started()
        pcm = resample_pcm16(frame, self.sample_rate, SAMPLE_RATE)
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
            transcript = await self.speech.transcribe(audio, self.options["language"], cache=False)
            if transcript.text and self.buffer and self.speculation is None:
                await self.send({"type": "partial_transcript", "text": transcript.text})
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
        transcript = await self.speech.transcribe(audio, self.options["language"], speculation.timings)
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
        self._require_started()
        if not self.buffer:
            return
        ended = self.speech_ended_at or time.perf_counter()
        audio = np.concatenate(self.buffer)
        speculation, self.speculation = self.speculation, None
        heard = self.heard_speech or bool(await asyncio.to_thread(speech_timestamps, audio))
        self.reset()
        if not heard:  # only silence since the last turn
            if not self.ended_by_silence:
                await self.send({"type": "error", "status": 422, "detail": "no speech was heard; speak, then end"})
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
            transcript = await self.speech.transcribe(audio, self.options["language"], timings)
        await self.send(
            {"type": "final_transcript", "text": transcript.text, "cached": transcript.cached, "timings_ms": timings}
        )
        if not transcript.text.strip():
            await self.send({"type": "error", "status": 422, "detail": "no speech was recognised; ask again"})
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
        o = self.options
        first_audio = True
        try:
            async for event in self.agent.answer_events(
                question, o["collections"], o["mode"], o["k"], timings, o["speak"]
            ):
                if hold is not None:
                    await hold.wait()
                if isinstance(event, Audio):
                    if first_audio:
                        timings["voice_to_first_audio"] = round((time.perf_counter() - ended) * 1000, 3)
                        first_audio = False
                    await self.send({"type": "audio"} | event.to_json())
                    await self.send_bytes(event.speech.pcm)
                elif isinstance(event, Done):
                    await self.send({"type": "done", "answer": event.to_json(), "timings_ms": timings})
                else:  # the text as it comes: sources, answer_delta, fallback
                    kind = "answer_delta" if isinstance(event, Delta) else event.kind
                    await self.send({"type": kind} | event.to_json())
        except asyncio.CancelledError:
            raise
        except VoiceRAGError as exc:
            await self.send({"type": "error", "status": exc.status, "detail": exc.detail})
        except Exception as exc:
            log.exception("voice answer failed")
            await self.send({"type": "error", "status": 500, "detail": f"{type(exc).__name__}: {exc}"})

    def _require_started(self) -> None:
        if not self.options:
            raise InvalidInput('send {"type": "start", "collection": NAME} first')

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

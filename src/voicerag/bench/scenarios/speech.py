"""Groups ``stt`` and ``tts``: transcription and synthesis, on recorded or synthesised clips."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicerag.app import VoiceRAG
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import Group
from voicerag.config import Settings
from voicerag.speech.stt import WhisperTranscriber


def spoken_questions(count: int) -> list[tuple[str, bytes]]:
    """``count`` questions of about five seconds, spoken by the local voice, as 16 kHz 16-bit PCM."""
    return speak(
        [
            f"Could you please tell me what record number {i + 12} says about the river and the old copper engine?"
            for i in range(count)
        ]
    )


def speak(texts: list[str]) -> list[tuple[str, bytes]]:
    """Each text spoken by the local voice (Piper, without its random variation: the same audio every run), as
    16 kHz 16-bit PCM."""
    from piper import SynthesisConfig

    from voicerag.speech.audio import resample_pcm16
    from voicerag.speech.tts import load_piper

    voice = load_piper()
    still = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    out = []
    for text in texts:
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, still))
        out.append((text, resample_pcm16(pcm, voice.config.sample_rate, 16_000)))
    return out


def recorded_clips(folder: Path, count: int) -> list[tuple[str, bytes]]:
    """The first ``count`` clips listed in ``folder/transcripts.tsv``, with their reference text, as 16 kHz 16-bit
    PCM."""
    from voicerag.evaluation.stt import load_transcripts
    from voicerag.speech.audio import decode_audio, float_to_pcm16

    return [(text, float_to_pcm16(decode_audio(clip.read_bytes()))) for clip, text in load_transcripts(folder)[:count]]


FIRST_PIECE_LENGTHS = (20, 40, 60, 100)


PIECE_TEXT = (
    "The museum opens at nine in the morning and tickets are sold at the main entrance until five in the evening."
)


ANSWER_TEXTS = [
    "The museum opens at nine in the morning. Tickets are sold at the main entrance until five.",
    "Record twelve describes a river, a copper engine and a lantern. It was written in the archive.",
    "The warehouse opens at seven on weekdays. On Saturdays it opens at eight and closes at noon.",
]


async def speech(
    config: BenchConfig,
    base: Settings,
    record: Callable[..., dict[str, Any]],
    scenarios: dict[str, Any],
    clips: list[tuple[str, bytes]],
) -> None:
    """Transcription (WER, real-time factor, the trimmed window against Whisper's full one) and synthesis
    (first audio, and per length of the first spoken piece)."""
    import jiwer

    from voicerag.evaluation.stt import normalizer
    from voicerag.speech.audio import pcm16_to_float

    async with await VoiceRAG.open(base.model_copy(update={"cache_enabled": False})) as rag:
        await rag.speech.preload()
        if config.wants("stt"):
            # the configured transcriber beside Whisper fed its whole 30 s window, interleaved clip by clip
            transcribers = {"stt": rag.speech.transcriber}
            if isinstance(rag.speech.transcriber, WhisperTranscriber):
                full = base.model_copy(update={"stt_min_window_s": 30.0})
                transcribers["stt_full_window"] = WhisperTranscriber(full, asyncio.Semaphore(1))
            latencies: dict[str, list[float]] = {name: [] for name in transcribers}
            heard: dict[str, list[str]] = {name: [] for name in transcribers}
            for transcriber in transcribers.values():  # warm up
                await transcriber.transcribe(pcm16_to_float(clips[0][1]), base.stt_language)
            seconds = 0.0
            for _, pcm in clips:
                audio = pcm16_to_float(pcm)
                seconds += audio.size / 16_000
                for name, transcriber in transcribers.items():
                    t = time.perf_counter()
                    heard[name].append((await transcriber.transcribe(audio, base.stt_language)).text)
                    latencies[name].append(time.perf_counter() - t)
            normalize = normalizer()
            for name in transcribers:
                wer = jiwer.wer([normalize(text) for text, _ in clips], [normalize(text) for text in heard[name]])
                record(
                    name,
                    latencies[name],
                    sum(latencies[name]),
                    0,
                    rtf=round(sum(latencies[name]) / seconds, 4),
                    wer=round(wer, 4),
                    clips=len(clips),
                    audio_seconds_mean=round(seconds / len(clips), 2),
                    model=transcribers[name].signature,
                )
        if config.wants("tts"):
            first, total, audio_s = [], [], 0.0
            for text in ANSWER_TEXTS:
                t = time.perf_counter()
                async for index, _, speech in rag.speech.speak_stream(rag.speech.check_text(text)):
                    if index == 0:
                        first.append(time.perf_counter() - t)
                    audio_s += speech.seconds
                total.append(time.perf_counter() - t)
            record("tts_first_audio", first, sum(total), 0)
            record("tts_total", total, sum(total), 0, rtf=round(sum(total) / audio_s, 4))
            by_length: dict[int, list[float]] = {n: [] for n in FIRST_PIECE_LENGTHS}
            for _ in range(5):  # interleaved: what the first piece's length costs (VOICE_FIRST_PIECE_CHARS)
                for n in FIRST_PIECE_LENGTHS:
                    t = time.perf_counter()
                    await rag.speech.synthesizer.synthesize(PIECE_TEXT[:n].rsplit(" ", 1)[0], base.tts_speed)
                    by_length[n].append(time.perf_counter() - t)
            for n, latencies in by_length.items():
                record(f"tts_piece_{n}_chars", latencies, sum(latencies), 0)


GROUP = Group(
    ("stt", "tts"),
    lambda bench: speech(
        bench.config, bench.base, bench.record, bench.scenarios, bench.clips() if bench.config.wants("stt") else []
    ),
)

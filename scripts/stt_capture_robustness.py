"""How the same spoken question is heard after the small changes a browser's capture makes to it.

    python scripts/stt_capture_robustness.py "When was the cat domesticated in the Near East?" ... > out.json

Each question is spoken by the local Piper voice (noise off, so always the same audio), then, per trial:
resampled through a device rate (44.1, 48 or 32 kHz) to 16 kHz, started 0 to 400 samples late, with up to
three runs of one to three 128-sample quanta dropped (what a starved audio thread loses), and transcribed by
the configured local Whisper. Prints, per question, each distinct transcript and how many trials gave it.
Used to choose the browser test's question (tests/e2e/test_browser.py), which tests the page, not the model."""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import sys
import wave
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import spoken_wav  # noqa: E402
from voicerag.config import Settings  # noqa: E402
from voicerag.speech.audio import SAMPLE_RATE, float_to_pcm16, pcm16_to_float, resample_pcm16  # noqa: E402
from voicerag.speech.stt import WhisperTranscriber  # noqa: E402

QUANTUM = 128  # Web Audio's render quantum
DEVICE_RATES = (44_100, 48_000, 32_000)


def resampled(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    return pcm16_to_float(resample_pcm16(float_to_pcm16(audio), rate, target))


def captured(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` as one capture might deliver it at 16 kHz (see the module's docstring)."""
    device = int(rng.choice(DEVICE_RATES))
    heard = resampled(resampled(audio, rate, device), device, SAMPLE_RATE)[int(rng.integers(0, 400)) :]
    for _ in range(int(rng.integers(0, 4))):
        at = int(rng.integers(SAMPLE_RATE // 5, heard.size - SAMPLE_RATE // 2)) // QUANTUM * QUANTUM
        heard = np.concatenate([heard[:at], heard[at + QUANTUM * int(rng.integers(1, 4)) :]])
    return heard


def main(questions: list[str], trials: int = 40, seed: int = 7) -> None:
    settings = Settings()
    transcriber = WhisperTranscriber(settings, asyncio.Semaphore(1))
    command = " ".join(["python scripts/stt_capture_robustness.py", *map(shlex.quote, questions)])
    report = {"command": command, "trials": trials, "seed": seed, "model": transcriber.signature, "questions": {}}
    for question in questions:
        with wave.open(io.BytesIO(spoken_wav(question, lead_s=0.2, tail_s=1.0))) as clip:
            rate = clip.getframerate()
            audio = pcm16_to_float(clip.readframes(clip.getnframes()))
        rng = np.random.default_rng(seed)
        heard = Counter(transcriber.transcribe_sync(captured(audio, rate, rng), "en").text for _ in range(trials))
        report["questions"][question] = dict(heard.most_common())
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])

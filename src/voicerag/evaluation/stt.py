"""Speech-to-text quality and speed: word error rate (Whisper's English normaliser, then jiwer) and
real-time factor over a folder of clips with ``transcripts.tsv`` (``file<TAB>text``, a header line)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jiwer

from voicerag.errors import InvalidInput
from voicerag.speech.audio import SAMPLE_RATE, decode_audio
from voicerag.speech.service import SpeechService


def load_transcripts(folder: Path) -> list[tuple[Path, str]]:
    """The (clip, reference text) pairs listed in ``folder/transcripts.tsv``."""
    table = folder / "transcripts.tsv"
    if not table.is_file():
        raise InvalidInput(f"{table} does not exist; the folder needs transcripts.tsv (file<TAB>text, a header line)")
    with table.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    pairs = []
    for row in rows[1:]:
        if len(row) >= 2 and row[0].strip():
            clip = folder / row[0].strip()
            if not clip.is_file():
                raise InvalidInput(f"transcripts.tsv names {row[0]!r}, which is not in {folder}")
            pairs.append((clip, row[1]))
    if not pairs:
        raise InvalidInput(f"{table} lists no clips")
    return pairs


def normalizer() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    normalize = EnglishTextNormalizer()
    return lambda text: " ".join(normalize(text).split())


async def evaluate_stt(
    speech: SpeechService, folder: Path, limit: int | None = None, progress: Callable[[], None] | None = None
) -> dict[str, Any]:
    """WER and RTF of the configured transcriber (uncached: every clip is transcribed)."""
    pairs = load_transcripts(folder)[:limit]
    normalize = normalizer()
    await speech.preload()
    references, hypotheses, clips = [], [], []
    audio_seconds = compute_seconds = 0.0
    for clip, reference in pairs:
        audio = decode_audio(clip.read_bytes())
        started = time.perf_counter()
        transcript = await speech.transcribe(audio, cache=False)
        elapsed = time.perf_counter() - started
        seconds = audio.size / SAMPLE_RATE
        audio_seconds += seconds
        compute_seconds += elapsed
        ref, hyp = normalize(reference), normalize(transcript.text)
        references.append(ref)
        hypotheses.append(hyp)
        clips.append(
            {
                "file": clip.name,
                "seconds": round(seconds, 3),
                "rtf": round(elapsed / seconds, 4),
                "wer": round(jiwer.wer(ref, hyp), 4) if ref else None,
                "reference": reference,
                "hypothesis": transcript.text,
            }
        )
        if progress:
            progress()
    return {
        "wer": round(jiwer.wer(references, hypotheses), 4),
        "rtf": round(compute_seconds / audio_seconds, 4),
        "clips": len(clips),
        "audio_seconds": round(audio_seconds, 2),
        "model": speech.transcriber.signature,
        "per_clip": clips,
    }

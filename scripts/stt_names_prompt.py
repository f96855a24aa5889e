"""WER of the local transcriber with and without a collection's names as its prompt, as JSON.

    python scripts/stt_names_prompt.py ../shared/data/docs-qa ../shared/data/speech --questions 40 \
        > benchmarks/voice/stt_names_prompt.json

The documentation set's questions (an even sample, offset by one from the voice bench's) are spoken by Piper and
transcribed as a voice session does, once plainly and once with the names of the set's corpus as the prompt
(``speech/vocabulary.py``). The recorded clips (transcripts.tsv) are transcribed plainly and with that same,
unrelated prompt: what a prompt costs speech that does not use its names. Each clip is transcribed both ways in
turn (interleaved, so the machine's load falls on both alike) and the model's own time kept."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

import jiwer

from voicerag.bench.scenarios.speech import speak
from voicerag.config import Settings
from voicerag.documents.loaders import load_paths
from voicerag.evaluation.docs import load_questions
from voicerag.evaluation.stt import load_transcripts, normalizer
from voicerag.speech.audio import decode_audio, pcm16_to_float
from voicerag.speech.stt import WhisperTranscriber
from voicerag.speech.vocabulary import names_in, prompt_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs_set", type=Path)
    parser.add_argument("speech", type=Path)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds over the spoken questions")
    args = parser.parse_args()
    questions = load_questions(args.docs_set)
    count = min(args.questions, len(questions) - 1)
    sample = [questions[i * len(questions) // count + 1]["question"] for i in range(count)]
    names = names_in(d.text for d in load_paths([args.docs_set / "corpus"], []))
    prompt = prompt_of(names)
    transcriber = WhisperTranscriber(Settings(preload_speech=False), asyncio.Semaphore(1))
    normalize = normalizer()

    def compare(audios: list, references: list[str], rounds: int) -> dict[str, object]:
        """Each clip plainly and with the prompt, interleaved clip by clip, ``rounds`` times: WER of each (the
        first round's transcripts) and the model's time, with the per-clip ratio prompted / plain."""
        heard: dict[str, list[str]] = {"plain": [], "with_names": []}
        seconds: dict[str, list[float]] = {"plain": [], "with_names": []}
        for round_ in range(rounds):
            for audio in audios:
                for name, with_prompt in (("plain", None), ("with_names", prompt)):
                    transcript = transcriber.transcribe_sync(audio, "en", with_prompt)
                    seconds[name].append(transcript.seconds)
                    if round_ == 0:
                        heard[name].append(transcript.text)
        ratios = sorted(p / q for p, q in zip(seconds["with_names"], seconds["plain"], strict=True))
        normalized = [normalize(r) for r in references]
        wers = {name: jiwer.wer(normalized, [normalize(t) for t in texts]) for name, texts in heard.items()}
        return {
            "clips": len(audios),
            "rounds": rounds,
            **{f"wer_{name}": round(value, 4) for name, value in wers.items()},
            **{f"model_ms_p50_{name}": round(1000 * statistics.median(s), 1) for name, s in seconds.items()},
            "model_time_ratio_p25_p50_p75": [round(ratios[len(ratios) * q // 4], 3) for q in (1, 2, 3)],
        }

    spoken = [pcm16_to_float(pcm) for _, pcm in speak(sample)]
    transcriber.transcribe_sync(spoken[0], "en")  # the model loads outside the timings
    clips = load_transcripts(args.speech)
    recorded = [decode_audio(clip.read_bytes()) for clip, _ in clips]
    json.dump(
        {
            "command": " ".join(["python scripts/stt_names_prompt.py", *sys.argv[1:]]),
            "model": transcriber.signature,
            "prompt": prompt,
            "docs_questions_spoken_by_piper": compare(spoken, sample, args.rounds),
            "recorded_clips_unrelated_prompt": compare(recorded, [text for _, text in clips], 1),
        },
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()

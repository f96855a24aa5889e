"""WER of the local transcriber with and without a collection's names as its prompt, as JSON.

    python scripts/stt_names_prompt.py ../shared/data/docs-qa ../shared/data/speech --questions 40 \
        > benchmarks/voice/stt_names_prompt.json

The documentation set's questions (an even sample, offset by one from the voice bench's) are spoken by Piper and
transcribed as a voice session does, once plainly and once with the names of the set's corpus as the prompt
(``speech/vocabulary.py``). The recorded clips (transcripts.tsv) are transcribed plainly and with that same,
unrelated prompt: what a prompt costs speech that does not use its names."""

from __future__ import annotations

import argparse
import asyncio
import json
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
    args = parser.parse_args()
    questions = load_questions(args.docs_set)
    count = min(args.questions, len(questions) - 1)
    sample = [questions[i * len(questions) // count + 1]["question"] for i in range(count)]
    names = names_in(d.text for d in load_paths([args.docs_set / "corpus"], []))
    prompt = prompt_of(names)
    transcriber = WhisperTranscriber(Settings(preload_speech=False), asyncio.Semaphore(1))
    normalize = normalizer()

    def wer(audios: list, references: list[str], with_prompt: str | None) -> float:
        heard = [transcriber.transcribe_sync(audio, "en", with_prompt).text for audio in audios]
        return round(jiwer.wer([normalize(r) for r in references], [normalize(h) for h in heard]), 4)

    spoken = [pcm16_to_float(pcm) for _, pcm in speak(sample)]
    clips = load_transcripts(args.speech)
    recorded = [decode_audio(clip.read_bytes()) for clip, _ in clips]
    json.dump(
        {
            "command": " ".join(["python scripts/stt_names_prompt.py", *sys.argv[1:]]),
            "model": transcriber.signature,
            "prompt": prompt,
            "docs_questions_spoken_by_piper": {
                "questions": len(sample),
                "wer_plain": wer(spoken, sample, None),
                "wer_with_names": wer(spoken, sample, prompt),
            },
            "recorded_clips_unrelated_prompt": {
                "clips": len(clips),
                "wer_plain": wer(recorded, [text for _, text in clips], None),
                "wer_with_names": wer(recorded, [text for _, text in clips], prompt),
            },
        },
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()

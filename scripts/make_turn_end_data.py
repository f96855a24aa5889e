"""Make the training rows of the end-of-turn model: finished turns and their unfinished prefixes, spoken by Piper
and transcribed by the project's own Whisper (so the text carries Whisper's real punctuation and casing on cut-off
speech, not the question file's).

    python scripts/make_turn_end_data.py ../shared/data --out turn_end_rows.jsonl [--questions 160 --statements 60]

Finished turns: every docs-qa question, a sample of SQuAD questions, and short prose sentences from the SQuAD
paragraphs (people also ask in statements: "Tell me about the cache."). Unfinished: each one's audio cut between
two words (after a random 1 .. n-1 of them, by Whisper's word timings), so the prefix keeps the mid-sentence
prosody of a speaker who pauses. Each row: ``{"text", "spoken", "complete", "source", "words"}``;
``fit_turn_end.py`` fits the model on them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

from voicerag.config import Settings
from voicerag.speech.audio import SAMPLE_RATE, pcm16_to_float, resample_pcm16
from voicerag.speech.stt import WhisperTranscriber
from voicerag.speech.tts import PiperSynthesizer


def finished_turns(data: Path, squad_questions: int, statements: int, rng: random.Random) -> list[tuple[str, str]]:
    """(text, source) pairs: docs-qa questions, SQuAD questions, SQuAD prose sentences of 6-22 words."""
    turns = [(json.loads(line)["question"], "docs-qa") for line in (data / "docs-qa/questions.jsonl").open()]
    squad = [json.loads(line)["text"] for line in (data / "squad-beir/queries.jsonl").open()]
    turns += [(q, "squad-question") for q in rng.sample(squad, squad_questions)]
    sentences = []
    for line in (data / "squad-beir/corpus.jsonl").open():
        for sentence in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]):
            if 6 <= len(sentence.split()) <= 22 and sentence.endswith(".") and not re.search(r"[\d()\[\];]", sentence):
                sentences.append(sentence)
    turns += [(s, "squad-statement") for s in rng.sample(sentences, statements)]
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the shared data folder (docs-qa/, squad-beir/)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=160, help="SQuAD questions to speak")
    parser.add_argument("--statements", type=int, default=60, help="SQuAD prose sentences to speak")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    settings = Settings(data_dir=Path("/tmp/turn-end-unused"))
    import asyncio

    limit = asyncio.Semaphore(1)
    stt, tts = WhisperTranscriber(settings, limit), PiperSynthesizer(settings, limit)
    rows = []
    turns = finished_turns(args.data, args.questions, args.statements, rng)
    pad = np.zeros(SAMPLE_RATE // 10, np.float32)  # the speculation hears 0.1 s past the end of speech
    for done, (text, source) in enumerate(turns):
        speech = tts.synthesize_sync(text, rng.uniform(0.85, 1.15))
        audio = pcm16_to_float(resample_pcm16(speech.pcm, speech.sample_rate, SAMPLE_RATE))
        segments, _ = stt.model().transcribe(audio, language="en", word_timestamps=True, vad_filter=False)
        words = [word for segment in segments for word in segment.words]
        if len(words) < 2:
            continue
        heard = stt.transcribe_sync(np.concatenate([audio, pad]), "en").text
        rows.append({"text": heard, "spoken": text, "complete": True, "source": source, "words": len(words)})
        cut = rng.randint(1, len(words) - 1)  # the speaker pauses after this many words, mid-sentence prosody
        at = int((words[cut - 1].end + words[cut].start) / 2 * SAMPLE_RATE)
        heard = stt.transcribe_sync(np.concatenate([audio[:at], pad]), "en").text
        spoken = "".join(word.word for word in words[:cut]).strip()
        rows.append({"text": heard, "spoken": spoken, "complete": False, "source": source, "words": cut})
        if done % 25 == 0:
            print(f"{done}/{len(turns)}: {rows[-2]['text']!r} / {rows[-1]['text']!r}", file=sys.stderr, flush=True)
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"{len(rows)} rows -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

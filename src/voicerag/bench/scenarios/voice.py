"""Group ``voice``: spoken questions over a served VoiceRAG's websocket, streamed in real time as a microphone
sends them; the turn ended by the client (push-to-talk) or by silence; turns with a pause spliced inside the
question (is the turn cut off there?); and, with ``--docs-qa``, the same turns on a documentation set's questions
spoken by Piper, so the answer step of real documents is inside the figure and each spoken answer is scored."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from voicerag.app import VoiceRAG
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import Group
from voicerag.bench.server import server_process
from voicerag.config import Settings
from voicerag.documents.loaders import Document, load_paths

Record = Callable[..., dict[str, Any]]

NOTES = {
    "ptt": "'end' sent to first answer audio",
    "silence": "end of speech to first answer audio; the turn ended by silence (the microphone kept streaming)",
}


@dataclass
class VoiceTurn:
    """One spoken turn as the client saw it."""

    seconds: float  # from the end (the client's 'end', or the end of speech) to the first answer audio
    stages_ms: dict[str, float]  # the server's own timings of the turn's stages
    ended_inside: bool  # a final transcript came before the clip's last speech was sent (cut off at a pause)
    transcript: str = ""
    answer: dict[str, Any] = field(default_factory=dict)


async def voice_turns(
    config: BenchConfig, scenarios: dict[str, Any], record: Record, clips: list[tuple[str, bytes]]
) -> None:
    """Push-to-talk and silence-ended turns on the clips, false turn ends with the end-of-turn model and without,
    and (with ``config.docs_qa``) the documentation set's spoken questions."""
    logs = config.data_dir / "logs"
    collection = "bench"
    if config.speech:  # recorded clips: their transcripts are the documents, so every turn finds its answer
        collection = "bench-speech"
        docs = [Document(f"clip-{i}", text, f"Clip {i}") for i, (text, _) in enumerate(clips)]
        async with await VoiceRAG.open(Settings(data_dir=config.data_dir, preload_speech=False)) as rag:
            await rag.ingest(collection, docs)
    docs_set = await _prepare_docs_set(config) if config.docs_qa else None
    with server_process(config.data_dir, logs / "server_voice.log", cache_enabled=False) as server:
        await voice_to_voice(server.url, clips[0][1], collection=collection)  # warm up the models
        for how, note in NOTES.items():
            turns = [
                await voice_to_voice(server.url, pcm, end_by_silence=how == "silence", collection=collection)
                for _, pcm in clips
            ]
            _record_turns(record, f"voice_to_voice_{how}", turns, note)
        rng = random.Random(23)
        paused = [with_inner_pause(pcm, rng.uniform(0.3, 0.7), rng) for _, pcm in clips]
        scenarios["false_turn_end_rate"] = await false_turn_ends(server.url, paused, collection)
        if docs_set is not None:
            await _docs_turns(server.url, docs_set, record)
    off = {"cache_enabled": False, "stt_turn_end_threshold": 0.0}
    with server_process(config.data_dir, logs / "server_voice_off.log", **off) as server:
        await voice_to_voice(server.url, clips[0][1], collection=collection)
        scenarios["false_turn_end_rate_silence_only"] = await false_turn_ends(server.url, paused, collection)
        scenarios["false_turn_end_rate_silence_only"]["note"] += "; the end-of-turn model off (silence alone)"


def _record_turns(record: Record, name: str, turns: list[VoiceTurn], note: str, **extra: Any) -> dict[str, Any]:
    latencies = [turn.seconds for turn in turns]
    return record(
        name,
        latencies,
        sum(latencies),
        0,
        note=note,
        stages_ms=_median_stages([turn.stages_ms for turn in turns]),
        turns_ended_at_inner_pause=sum(turn.ended_inside for turn in turns),
        **extra,
    )


@dataclass
class _DocsSet:
    """A documentation set's questions, spoken, and the collection holding its corpus."""

    collection: str
    questions: list[dict[str, Any]]
    spoken: list[bytes]


async def _prepare_docs_set(config: BenchConfig) -> _DocsSet:
    """Ingest the set's corpus (incremental: a kept data dir finds it in place) and speak an even sample of its
    questions (``--clips`` of them) with Piper."""
    from voicerag.bench.scenarios.speech import speak
    from voicerag.evaluation.docs import load_questions

    assert config.docs_qa is not None
    collection = "bench-docs"
    async with await VoiceRAG.open(Settings(data_dir=config.data_dir, preload_speech=False)) as rag:
        documents = await asyncio.to_thread(load_paths, [config.docs_qa / "corpus"], [])
        await rag.ingest(collection, documents)
    questions = load_questions(config.docs_qa)
    count = min(config.profile.speech_clips, len(questions))
    sample = [questions[i * len(questions) // count] for i in range(count)]
    return _DocsSet(collection, sample, [pcm for _, pcm in speak([q["question"] for q in sample])])


async def _docs_turns(url: str, docs_set: _DocsSet, record: Record) -> None:
    """Each spoken question of the set, push-to-talk and silence-ended; each spoken answer scored as the set's own
    evaluation scores a typed one, beside the same questions typed to the same server."""
    import jiwer

    from voicerag.evaluation.docs import answered_right
    from voicerag.evaluation.stt import normalizer

    def right(question: dict[str, Any], answer: dict[str, Any]) -> bool:
        return answered_right(question, bool(answer.get("found")), answer.get("answer", ""))

    async with httpx.AsyncClient(timeout=120) as client:
        typed = []
        for question in docs_set.questions:
            response = await client.post(
                f"{url}/v1/ask", json={"question": question["question"], "collection": docs_set.collection}
            )
            response.raise_for_status()
            typed.append(right(question, response.json()))
    for how, note in NOTES.items():
        turns = [
            await voice_to_voice(url, pcm, end_by_silence=how == "silence", collection=docs_set.collection)
            for pcm in docs_set.spoken
        ]
        spoken_right = [right(q, turn.answer) for q, turn in zip(docs_set.questions, turns, strict=True)]
        normalize = normalizer()
        references = [normalize(q["question"]) for q in docs_set.questions]
        _record_turns(
            record,
            f"voice_to_voice_docs_{how}",
            turns,
            f"{note}; the documentation set's questions spoken by Piper, its corpus the collection",
            answers_right=sum(spoken_right),
            answers_right_typed=sum(typed),
            question_wer=round(jiwer.wer(references, [normalize(turn.transcript) for turn in turns]), 4),
            transcripts=[turn.transcript for turn in turns],
        )


async def false_turn_ends(url: str, paused: list[tuple[bytes, float]], collection: str) -> dict[str, Any]:
    """How many of the questions with a pause spliced in had their turn ended at that pause."""
    turns = [await voice_to_voice(url, pcm, end_by_silence=True, collection=collection) for pcm, _ in paused]
    ends = [turn.ended_inside for turn in turns]
    return {
        "rate": round(sum(ends) / len(ends), 4),
        "turns": len(ends),
        "ended_at_the_pause": sum(ends),
        "pauses_s": [round(seconds, 3) for _, seconds in paused],
        "note": "each question with a pause of 0.3-0.7 s spliced in at a word boundary in its middle third "
        "(Whisper's word timings); a turn whose final transcript came before the speech after the pause was sent "
        "counts",
    }


def with_inner_pause(pcm: bytes, seconds: float, rng: random.Random) -> tuple[bytes, float]:
    """The clip with ``seconds`` of silence spliced in between two words in its middle third (Whisper's word
    timings find them), and the pause's length."""
    from voicerag.config import Settings
    from voicerag.speech.audio import SAMPLE_RATE, pcm16_to_float
    from voicerag.speech.stt import WhisperTranscriber

    model = WhisperTranscriber(Settings(preload_speech=False), asyncio.Semaphore(1)).model()
    segments, _ = model.transcribe(pcm16_to_float(pcm), language="en", word_timestamps=True, vad_filter=False)
    words = [word for segment in segments for word in segment.words]
    middle = [i for i in range(len(words) - 1) if len(words) / 3 <= i + 1 <= 2 * len(words) / 3] or [0]
    i = rng.choice(middle)
    cut = int((words[i].end + words[i + 1].start) / 2 * SAMPLE_RATE) * 2 if len(words) > 1 else len(pcm) // 2
    cut -= cut % 2
    return pcm[:cut] + b"\0" * (2 * int(seconds * SAMPLE_RATE)) + pcm[cut:], seconds


def _median_stages(turns: list[dict[str, float]]) -> dict[str, float]:
    """Each stage's median over the turns (ms), as the server timed them."""
    names = sorted({name for turn in turns for name in turn})
    return {name: round(float(np.median([t[name] for t in turns if name in t])), 1) for name in names}


async def voice_to_voice(url: str, pcm: bytes, end_by_silence: bool = False, collection: str = "bench") -> VoiceTurn:
    """Over the websocket, 100 ms frames in real time as a microphone sends them: a spoken question, then
    ``end`` (seconds from ``end`` to the first answer audio frame), or with ``end_by_silence`` silence for as
    long as it takes (seconds from the end of the speech, found by the VAD, to the first answer audio). Also the
    server's own timings of the turn's stages (transcription, search, answer, first audio...), in ms, and
    whether a pause inside the clip ended the turn (a final transcript came before the clip's last speech was
    sent: the server took the pause for the end of the question); the final transcript and the answer."""
    from websockets.asyncio.client import connect

    from voicerag.speech.audio import pcm16_to_float
    from voicerag.speech.stt import speech_timestamps

    frame = 3200  # bytes: 100 ms of 16 kHz 16-bit mono
    speech_ends = [2 * part["end"] for part in speech_timestamps(pcm16_to_float(pcm))]  # in bytes
    ended: list[float] = []
    last_speech_sent = asyncio.Event()
    async with connect(url.replace("http://", "ws://") + "/v1/voice/stream", max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "collection": collection, "sample_rate": 16_000}))
        await ws.recv()

        async def microphone() -> None:
            for i in range(0, len(pcm), frame):
                await ws.send(pcm[i : i + frame])
                for speech_end in speech_ends:  # this frame holds an end of speech, captured that long ago
                    if i <= speech_end < i + frame:
                        ended.append(time.perf_counter() - (i + frame - speech_end) / 32_000)
                if not speech_ends or i + frame > speech_ends[-1]:
                    last_speech_sent.set()
                await asyncio.sleep(0.1)
            if not end_by_silence:
                ended[:] = [time.perf_counter()]
                await ws.send(json.dumps({"type": "end"}))
                return
            while True:  # the microphone stays open: silence until the server ends the turn
                await ws.send(b"\0" * frame)
                await asyncio.sleep(0.1)

        sending = asyncio.create_task(microphone())
        first_audio: float | None = None
        ended_inside = False
        transcript = ""
        try:
            while True:
                message = await asyncio.wait_for(ws.recv(), 120)
                if isinstance(message, bytes):
                    if first_audio is None:
                        first_audio = time.perf_counter() - ended[-1]
                    continue
                event = json.loads(message)
                if event["type"] == "error":
                    raise RuntimeError(event["detail"])
                if event["type"] == "final_transcript":
                    transcript = event["text"]
                    ended_inside = ended_inside or not last_speech_sent.is_set()
                if event["type"] == "done" and first_audio is not None:
                    return VoiceTurn(first_audio, event["timings_ms"], ended_inside, transcript, event["answer"])
        finally:
            sending.cancel()


GROUP = Group(("voice",), lambda bench: voice_turns(bench.config, bench.scenarios, bench.record, bench.clips()))

"""Groups ``http`` and ``voice``: a served VoiceRAG under load, and voice turns over its websocket."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import psutil

from voicerag.app import VoiceRAG
from voicerag.bench.load import LoadPlan, run_load
from voicerag.bench.profiles import BenchConfig
from voicerag.bench.scenarios import Group
from voicerag.bench.server import BenchServer, server_process
from voicerag.bench.stats import cache_summary
from voicerag.config import Settings
from voicerag.documents.loaders import Document


async def http_load(
    config: BenchConfig,
    mix: list[str],
    scenarios: dict[str, Any],
    record: Callable[..., dict[str, Any]],
    clips: list[tuple[str, bytes]],
) -> None:
    """A served VoiceRAG under load with the performance layer on and off, the concurrency sweep, and voice turns."""
    p = config.profile
    logs = config.data_dir / "logs"

    def body(i: int) -> dict[str, Any]:
        return {"question": mix[i % len(mix)], "collection": "bench"}

    async def load(server: BenchServer, concurrency: int, seconds: float, keep_alive: bool = True) -> dict[str, Any]:
        """The load, with the server process's CPU and memory and its cache figures."""
        process = psutil.Process(server.pid)
        before = process.cpu_times()
        plan = LoadPlan(f"{server.url}/v1/ask", body, concurrency, seconds, keep_alive=keep_alive)
        result = await run_load(plan)
        after = process.cpu_times()
        cpu = (after.user - before.user) + (after.system - before.system)
        stats = httpx.get(f"{server.url}/v1/cache/stats", timeout=30).json()
        return result | {
            "server_cpu_percent": round(100 * cpu / result["seconds"], 1),
            "server_rss_mb": round(process.memory_info().rss / 1e6, 1),
            "cache": cache_summary(stats),
        }

    if config.wants("http"):
        with server_process(config.data_dir, logs / "server_on.log", preload_speech=False) as server:
            await load(server, 2, 1.0)  # warm up the process (models, connections); the caches stay cold
            scenarios["http_ask_cold"] = await load(server, p.concurrency, p.http_seconds)
            scenarios["http_ask_cold"]["performance_layer"] = "on, caches starting empty"
            scenarios["http_ask"] = await load(server, p.concurrency, p.http_seconds)
            scenarios["http_ask"]["performance_layer"] = "on, steady state (the same load, next window)"
            for concurrency in p.sweep:
                scenarios[f"http_ask_c{concurrency}"] = await load(server, concurrency, p.sweep_seconds)
        off = {"cache_enabled": False, "retrieval_max_batch": 1, "db_pool_size": 1}
        with server_process(config.data_dir, logs / "server_off.log", preload_speech=False, **off) as server:
            await load(server, 2, 1.0, keep_alive=False)
            scenarios["http_ask_layer_off"] = await load(server, p.concurrency, p.http_seconds, keep_alive=False)
            scenarios["http_ask_layer_off"]["performance_layer"] = "off: no caches, no batching, 1 db "
            scenarios["http_ask_layer_off"]["performance_layer"] += "connection, no client keep-alive"
    if config.wants("voice"):
        collection = "bench"
        if config.speech:  # recorded clips: their transcripts are the documents, so every turn finds its answer
            collection = "bench-speech"
            docs = [Document(f"clip-{i}", text, f"Clip {i}") for i, (text, _) in enumerate(clips)]
            async with await VoiceRAG.open(Settings(data_dir=config.data_dir, preload_speech=False)) as rag:
                await rag.ingest(collection, docs)
        with server_process(config.data_dir, logs / "server_voice.log", cache_enabled=False) as server:
            await voice_to_voice(server.url, clips[0][1], collection=collection)  # warm up the models
            notes = {
                "voice_to_voice_ptt": "'end' sent to first answer audio",
                "voice_to_voice_silence": "end of speech to first answer audio; the turn ended by silence (the "
                "microphone kept streaming)",
            }
            for name, note in notes.items():
                turns = [
                    await voice_to_voice(server.url, pcm, end_by_silence="silence" in name, collection=collection)
                    for _, pcm in clips
                ]
                latencies = [seconds for seconds, _, _ in turns]
                record(
                    name,
                    latencies,
                    sum(latencies),
                    0,
                    note=note,
                    stages_ms=_median_stages([stages for _, stages, _ in turns]),
                    turns_ended_at_inner_pause=sum(inside for _, _, inside in turns),
                )
            rng = random.Random(23)
            paused = [with_inner_pause(pcm, rng.uniform(0.3, 0.7), rng) for _, pcm in clips]
            scenarios["false_turn_end_rate"] = await false_turn_ends(server.url, paused, collection)
        off = {"cache_enabled": False, "stt_turn_end_threshold": 0.0}
        with server_process(config.data_dir, logs / "server_voice_off.log", **off) as server:
            await voice_to_voice(server.url, clips[0][1], collection=collection)
            scenarios["false_turn_end_rate_silence_only"] = await false_turn_ends(server.url, paused, collection)
            scenarios["false_turn_end_rate_silence_only"]["note"] += "; the end-of-turn model off (silence alone)"


async def false_turn_ends(url: str, paused: list[tuple[bytes, float]], collection: str) -> dict[str, Any]:
    """How many of the questions with a pause spliced in had their turn ended at that pause."""
    ends = [(await voice_to_voice(url, pcm, end_by_silence=True, collection=collection))[2] for pcm, _ in paused]
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


async def voice_to_voice(
    url: str, pcm: bytes, end_by_silence: bool = False, collection: str = "bench"
) -> tuple[float, dict[str, float], bool]:
    """Over the websocket, 100 ms frames in real time as a microphone sends them: a spoken question, then
    ``end`` (seconds from ``end`` to the first answer audio frame), or with ``end_by_silence`` silence for as
    long as it takes (seconds from the end of the speech, found by the VAD, to the first answer audio). Also the
    server's own timings of the turn's stages (transcription, search, answer, first audio...), in ms, and
    whether a pause inside the clip ended the turn (a final transcript came before the clip's last speech was
    sent: the server took the pause for the end of the question)."""
    import json

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
                if event["type"] == "final_transcript" and not last_speech_sent.is_set():
                    ended_inside = True
                if event["type"] == "done" and first_audio is not None:
                    return first_audio, event["timings_ms"], ended_inside
        finally:
            sending.cancel()


GROUP = Group(
    ("http", "voice"),
    lambda bench: http_load(
        bench.config,
        bench.mix,
        bench.scenarios,
        bench.record,
        bench.clips() if bench.config.wants("voice") else [],
    ),
)

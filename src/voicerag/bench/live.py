"""``voicerag validate-live``: exercise the real provider paths whose keys are set (OpenAI, Requesty,
ElevenLabs) through VoiceRAG's own clients, and keep the raw timings and logs under ``logs/perf/live_<date>/``."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from voicerag.answer.llm import OpenAIChatGenerator
from voicerag.answer.types import Source
from voicerag.config import Settings
from voicerag.pools import Pools
from voicerag.retrieval.embedder import OpenAIEmbedder
from voicerag.speech.stt import OpenAITranscriber
from voicerag.speech.tts import ElevenLabsSynthesizer, OpenAISpeechSynthesizer

KEYS = {"openai": "OPENAI_API_KEY", "requesty": "REQUESTY_API_KEY", "elevenlabs": "ELEVENLABS_API_KEY"}
REQUESTY_BASE = "https://router.requesty.ai/v1"
SOURCE = Source(
    n=1,
    document_id="paris",
    chunk_id=1,
    collection="live",
    title="Paris",
    score=1.0,
    text="The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
    start=0,
    end=70,
)


async def _timed(call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await call()
    except Exception as exc:  # recorded, not raised: one failing path must not hide the others
        return {"ok": False, "ms": round((time.perf_counter() - started) * 1000, 1), "error": f"{exc!r}"[:500]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)} | (detail or {})


async def _chat(settings: Settings, pools: Pools) -> dict[str, Any]:
    generator = OpenAIChatGenerator(settings, pools)
    started, first, pieces = time.perf_counter(), None, []
    async for piece in generator.stream("When was the Eiffel Tower completed?", [SOURCE]):
        first = first or time.perf_counter() - started
        pieces.append(piece)
    return {"first_token_ms": round((first or 0) * 1000, 1), "answer": "".join(pieces)[:300]}


async def _embeddings(settings: Settings, pools: Pools) -> dict[str, Any]:
    vectors = await OpenAIEmbedder(settings, pools).embed(["hello world", "the Eiffel Tower"])
    return {"shape": list(vectors.shape)}


async def _speech_round_trip(settings: Settings, pools: Pools) -> dict[str, Any]:
    speech = await OpenAISpeechSynthesizer(settings, pools).synthesize("The museum opens at nine.", 1.0)
    from voicerag.speech.audio import pcm16_to_float, resample_pcm16

    audio = pcm16_to_float(resample_pcm16(speech.pcm, speech.sample_rate, 16_000))
    transcript = await OpenAITranscriber(settings, pools).transcribe(audio.astype(np.float32), "en")
    return {"audio_seconds": round(speech.seconds, 2), "transcript": transcript.text}


async def _elevenlabs(settings: Settings, pools: Pools) -> dict[str, Any]:
    speech = await ElevenLabsSynthesizer(settings, pools).synthesize("The museum opens at nine.", 1.0)
    return {"audio_seconds": round(speech.seconds, 2), "sample_rate": speech.sample_rate}


async def validate_live(out_dir: Path) -> dict[str, Any]:
    """Run what the environment's keys allow; without keys, say which are missing and measure nothing."""
    missing = {name: f"{var} is not set" for name, var in KEYS.items() if not os.environ.get(var)}
    result: dict[str, Any] = {"missing": missing, "measured": {}, "folder": None}
    if len(missing) == len(KEYS):
        return result
    folder = out_dir / f"live_{dt.datetime.now(dt.UTC):%Y%m%d_%H%M%S}"
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "live.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    try:
        plans: list[tuple[str, Settings, Callable[[Settings, Pools], Awaitable[dict[str, Any]]]]] = []
        if key := os.environ.get("OPENAI_API_KEY"):
            openai = Settings(
                llm_api_key=key, embedding_api_key=key, stt_api_key=key, tts_api_key=key, embedding_dimensions=1536
            )
            plans += [
                ("openai_chat", openai.model_copy(update={"embedding_model": "text-embedding-3-small"}), _chat),
                (
                    "openai_embeddings",
                    openai.model_copy(update={"embedding_model": "text-embedding-3-small"}),
                    _embeddings,
                ),
                ("openai_speech_and_transcription", openai, _speech_round_trip),
            ]
        if key := os.environ.get("REQUESTY_API_KEY"):
            requesty = Settings(
                llm_base_url=REQUESTY_BASE,
                llm_api_key=key,
                llm_model="openai/gpt-4o-mini",
                embedding_api_base=REQUESTY_BASE,
                embedding_api_key=key,
                embedding_model="openai/text-embedding-3-small",
                embedding_dimensions=1536,
            )
            plans += [("requesty_chat", requesty, _chat), ("requesty_embeddings", requesty, _embeddings)]
        if key := os.environ.get("ELEVENLABS_API_KEY"):
            plans.append(("elevenlabs_tts", Settings(elevenlabs_api_key=key), _elevenlabs))
        for name, settings, run in plans:
            pools = Pools.create(settings)
            try:
                result["measured"][name] = await _timed(
                    lambda run=run, settings=settings, pools=pools: run(settings, pools)
                )
            finally:
                await pools.aclose()
            logging.getLogger(__name__).info("%s: %s", name, result["measured"][name])
        result["folder"] = str(folder)
        (folder / "timings.json").write_text(json.dumps(result, indent=2) + "\n")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    return result

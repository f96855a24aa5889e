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
# where each provider is; *_BASE_URL variables point them elsewhere (a proxy, or a local test server)
BASES = {
    "openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "requesty": ("REQUESTY_BASE_URL", "https://router.requesty.ai/v1"),
    "elevenlabs": ("ELEVENLABS_BASE_URL", "https://api.elevenlabs.io"),
}


def _base(provider: str) -> str:
    variable, default = BASES[provider]
    return os.environ.get(variable) or default


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
            base = _base("openai")
            openai = Settings(
                llm_base_url=base,
                llm_api_key=key,
                embedding_api_base=base,
                embedding_api_key=key,
                embedding_model="text-embedding-3-small",
                embedding_dimensions=1536,
                stt_api_base=base,
                stt_api_key=key,
                tts_api_base=base,
                tts_api_key=key,
            )
            plans += [
                ("openai_chat", openai, _chat),
                ("openai_embeddings", openai, _embeddings),
                ("openai_speech_and_transcription", openai, _speech_round_trip),
            ]
        if key := os.environ.get("REQUESTY_API_KEY"):
            base = _base("requesty")
            requesty = Settings(
                llm_base_url=base,
                llm_api_key=key,
                llm_model="openai/gpt-4o-mini",
                embedding_api_base=base,
                embedding_api_key=key,
                embedding_model="openai/text-embedding-3-small",
                embedding_dimensions=1536,
            )
            plans += [("requesty_chat", requesty, _chat), ("requesty_embeddings", requesty, _embeddings)]
        if key := os.environ.get("ELEVENLABS_API_KEY"):
            elevenlabs = Settings(elevenlabs_api_key=key, elevenlabs_api_base=_base("elevenlabs"))
            plans.append(("elevenlabs_tts", elevenlabs, _elevenlabs))
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

"""A local server that speaks the OpenAI wire format (chat completions with SSE streaming, embeddings, audio
transcriptions and speech) and ElevenLabs' streaming text-to-speech, with switches to make it slow or failing:
the provider clients are tested against it."""

from __future__ import annotations

import asyncio
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass
class Behaviour:
    reply: str = "The Eiffel Tower was completed in 1889 [1]."
    delay_s: float = 0.0  # before the first byte
    word_delay_s: float = 0.0  # between streamed words
    status: int = 200
    fail_times: int = 0  # answer 503 this many times first
    transcript: str = "When was the Eiffel Tower completed?"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)


def tone_pcm(seconds: float, rate: int) -> bytes:
    """16-bit mono PCM of a 220 Hz tone: what the fake speech endpoints "say"."""
    n = int(seconds * rate)
    return struct.pack(f"<{n}h", *(int(8000 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(n)))


def create_fake_openai(behaviour: Behaviour) -> FastAPI:
    app = FastAPI()

    async def gate(request: Request) -> JSONResponse | None:
        """Record the request (its body is ``request.state.body``), then refuse it as the switches say."""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            body = {k: (await v.read() if hasattr(v, "read") else v) for k, v in form.items()}
        else:
            body = await request.json()
        request.state.body = body  # concurrent requests: each handler reads its own body, not requests[-1]
        behaviour.requests.append(body)
        behaviour.headers.append(dict(request.headers))
        behaviour.queries.append(dict(request.query_params))
        if behaviour.fail_times > 0:
            behaviour.fail_times -= 1
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503, headers={"retry-after": "0"})
        if behaviour.status != 200:
            return JSONResponse({"error": {"message": "bad"}}, status_code=behaviour.status)
        await asyncio.sleep(behaviour.delay_s)
        return None

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        refused = await gate(request)
        if refused is not None:
            return refused
        body = request.state.body
        words = behaviour.reply.split(" ")
        if not body.get("stream"):
            return {
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": behaviour.reply}, "finish_reason": "stop"}
                ],
            }

        async def events():
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
                await asyncio.sleep(behaviour.word_delay_s)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        refused = await gate(request)
        if refused is not None:
            return refused
        texts = request.state.body["input"]
        texts = [texts] if isinstance(texts, str) else texts
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t) % 7 + 1), 1.0, float(i + 1), 0.5]}
            for i, t in enumerate(texts)
        ]
        return {"object": "list", "data": data, "model": request.state.body["model"]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Any:
        refused = await gate(request)
        return refused if refused is not None else {"text": behaviour.transcript}

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Any:
        refused = await gate(request)
        if refused is not None:
            return refused
        words = len(request.state.body["input"].split())
        return Response(tone_pcm(0.3 * words, 24_000), media_type="audio/pcm")

    @app.post("/v1/text-to-speech/{voice_id}/stream")
    async def elevenlabs(voice_id: str, request: Request) -> Any:
        refused = await gate(request)
        if refused is not None:
            return refused
        if request.headers.get("xi-api-key") != "el-test":
            return JSONResponse({"detail": {"status": "invalid_api_key"}}, status_code=401)
        rate = int(request.query_params.get("output_format", "pcm_22050").removeprefix("pcm_"))
        pcm = tone_pcm(0.3 * len(request.state.body["text"].split()), rate)

        async def chunks():
            for i in range(0, len(pcm), 4096):
                yield pcm[i : i + 4096]

        return StreamingResponse(chunks(), media_type="audio/pcm")

    return app

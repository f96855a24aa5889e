"""A local server that speaks the OpenAI wire format (chat completions with SSE streaming, embeddings),
with switches to make it slow or failing: the provider clients are tested against it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Behaviour:
    reply: str = "The Eiffel Tower was completed in 1889 [1]."
    delay_s: float = 0.0  # before the first byte
    status: int = 200
    fail_times: int = 0  # answer 503 this many times first
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def create_fake_openai(behaviour: Behaviour) -> FastAPI:
    app = FastAPI()

    async def gate(request: Request) -> JSONResponse | None:
        behaviour.requests.append(await request.json())
        behaviour.headers.append(dict(request.headers))
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
        body = behaviour.requests[-1]
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
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        refused = await gate(request)
        if refused is not None:
            return refused
        texts = behaviour.requests[-1]["input"]
        texts = [texts] if isinstance(texts, str) else texts
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t) % 7 + 1), 1.0, float(i + 1), 0.5]}
            for i, t in enumerate(texts)
        ]
        return {"object": "list", "data": data, "model": behaviour.requests[-1]["model"]}

    return app

"""OpenAI-compatible routes, so any OpenAI client or chat UI can use VoiceRAG unchanged.

``/v1/chat/completions``: ``model`` names a collection (or several, joined by ``+``); the last user message
is the question; the answer is grounded and its sources ride along in an extra ``sources`` field.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from voicerag.answer.types import Answer
from voicerag.api.routes import Caller, Rag, get_principal
from voicerag.api.schemas import SSE_RESPONSES, ChatCompletionOut, EmbeddingsOut, ModelsOut
from voicerag.errors import InvalidInput, TooLarge
from voicerag.events import Delta, Done, Fallback, Sources

router = APIRouter(tags=["openai"], dependencies=[Depends(get_principal)])


class EmbeddingsIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str]
    model: str | None = None
    encoding_format: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


@router.get("/v1/models")
async def models(rag: Rag, caller: Caller) -> ModelsOut:
    """Each collection the key may read is a chat model; the embedder is an embedding model."""
    data = [
        {"id": c["name"], "object": "model", "created": 0, "owned_by": "voicerag"}
        for c in await rag.list_collections()
        if caller.can("read", c["name"])
    ]
    data.append({"id": rag.embedder.model_name, "object": "model", "created": 0, "owned_by": "voicerag"})
    return ModelsOut.model_validate({"object": "list", "data": data})


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingsIn, rag: Rag) -> EmbeddingsOut:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or any(not isinstance(t, str) or not t for t in texts):
        raise InvalidInput("input must be a non-empty string or a list of non-empty strings")
    limits = rag.settings
    if len(texts) > limits.max_embedding_inputs:
        raise TooLarge(
            f"{len(texts)} inputs; at most {limits.max_embedding_inputs} per request (VOICERAG_MAX_EMBEDDING_INPUTS)"
        )
    total = sum(len(t) for t in texts)
    if total > limits.max_embedding_chars:
        raise TooLarge(
            f"the inputs hold {total} characters; at most {limits.max_embedding_chars} per request "
            "(VOICERAG_MAX_EMBEDDING_CHARS; the model reads about the first 1,000 characters of each input)"
        )
    if body.encoding_format not in (None, "float", "base64"):
        raise InvalidInput("encoding_format must be 'float' or 'base64'")
    vectors = await rag.embed(texts)
    if body.encoding_format == "base64":
        import base64

        items: list[Any] = [base64.b64encode(np.asarray(v, np.float32).tobytes()).decode() for v in vectors]
    else:
        items = [v.tolist() for v in vectors]
    tokens = sum(len(t.split()) for t in texts)
    return EmbeddingsOut.model_validate(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(items)],
            "model": rag.embedder.model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _question(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            if content and content.strip():
                return content
    raise InvalidInput("messages must contain a user message with text")


def _extra(answer: Answer) -> dict[str, Any]:
    """VoiceRAG's own fields beside OpenAI's: whether the documents hold an answer (``found``: False means the
    text says they do not) and how sure that is, and how the answer was made."""
    return {
        "found": answer.found,
        "confidence": answer.confidence,
        "generator": answer.generator,
        "fallback": answer.fallback,
        "fallback_reason": answer.fallback_reason,
        "cached": answer.cached,
    }


@router.post("/v1/chat/completions", response_model=ChatCompletionOut, responses=SSE_RESPONSES)
async def chat_completions(body: ChatIn, rag: Rag, caller: Caller) -> Any:
    question = _question(body.messages)
    collections = [c for c in body.model.split("+") if c]
    caller.require("read", collections)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.stream:
        answer = await rag.ask(question, collections)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": len(question.split()),
                "completion_tokens": len(answer.text.split()),
                "total_tokens": len(question.split()) + len(answer.text.split()),
            },
            "sources": [s.to_json() for s in answer.sources],
            "voicerag": _extra(answer) | {"timings_ms": answer.timings_ms},
        }
    events = rag.ask_stream(question, collections)
    first = await anext(events)  # errors such as an unknown collection become a 4xx before streaming

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        } | extra
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def generate() -> AsyncIterator[str]:
        sources = first.sources if isinstance(first, Sources) else []
        yield chunk({"role": "assistant", "content": ""})
        replaced = False
        async for event in events:
            if isinstance(event, Delta) and not replaced:
                yield chunk({"content": event.text})
            elif isinstance(event, Fallback):
                replaced = True
                yield chunk({"content": "\n\n" + event.text})
            elif isinstance(event, Done):
                answer = event.answer
                yield chunk(
                    {},
                    "stop",
                    sources=sources,
                    voicerag=_extra(answer),
                )
        yield "data: [DONE]\n\n"

    return StreamingResponse(generate(), media_type="text/event-stream")

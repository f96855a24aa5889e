"""Answers from any OpenAI-compatible chat completions API, grounded in numbered sources, streamed."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx

from voicerag.answer.types import Source
from voicerag.config import Settings
from voicerag.errors import UpstreamError
from voicerag.pools import Pools, bearer

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources below. Cite the sources you use as [n]. "
    "If the sources do not contain the answer, say that you could not find it in the documents. "
    "Be brief: at most three sentences."
)
_CITATION = re.compile(r"\s?\[(\d+)\]")
_NOT_FOUND = re.compile(
    r"\b(?:could not|couldn't|can ?not|can't|unable to) (?:find|answer|determine)|\bno information\b|"
    r"\b(?:do|does) not (?:contain|mention|say|provide)|\bnot (?:mentioned|found|provided|stated) in\b",
    re.IGNORECASE,
)


def keep_known_citations(text: str, sources: int) -> str:
    """The answer with citation marks that name no source (``[7]`` of five) taken out."""
    return _CITATION.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= sources else "", text)


def says_not_found(text: str) -> bool:
    """Whether a model's answer says the sources do not hold the answer (and cites none of them)."""
    return bool(_NOT_FOUND.search(text)) and not _CITATION.search(text)


def build_messages(question: str, sources: list[Source]) -> list[dict[str, str]]:
    context = "\n\n".join(f"[{s.n}] {s.title}\n{s.text}" for s in sources)
    return [
        {"role": "system", "content": f"{SYSTEM_PROMPT}\n\nSources:\n{context}"},
        {"role": "user", "content": question},
    ]


class OpenAIChatGenerator:
    """Streams ``POST {base}/chat/completions`` (OpenAI, Requesty, Ollama, vLLM, llama.cpp server).

    Raises UpstreamError when the provider fails, is slower than the first-token timeout or the total
    timeout, so the pipeline can fall back to the extractive answer.
    """

    name = "llm"

    def __init__(self, settings: Settings, pools: Pools):
        self.url = settings.llm_base_url.rstrip("/") + "/chat/completions"
        self.model = settings.llm_model
        self.headers = bearer(settings.llm_api_key)
        self.max_tokens = settings.llm_max_tokens
        self.temperature = settings.llm_temperature
        self.first_token_timeout = settings.llm_first_token_timeout_s
        self.total_timeout = settings.llm_timeout_s
        self.pools = pools

    async def stream(self, question: str, sources: list[Source]) -> AsyncIterator[str]:
        body = {
            "model": self.model,
            "messages": build_messages(question, sources),
            "stream": True,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        deadline = asyncio.get_running_loop().time() + self.total_timeout
        timeout = httpx.Timeout(self.total_timeout, connect=min(5.0, self.total_timeout), read=self.first_token_timeout)
        # the transport owns retries and maps transport failures (refused, timed out, dropped mid-stream)
        async with self.pools.http.stream(
            "POST", self.url, json=body, headers=self.headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                detail = (await response.aread()).decode(errors="replace")[:300]
                raise UpstreamError(f"LLM provider answered {response.status_code}: {detail}")
            lines = response.aiter_lines()
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise UpstreamError(f"LLM answer took longer than {self.total_timeout:g} s")
                try:
                    line = await asyncio.wait_for(anext(lines), timeout=remaining)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise UpstreamError(f"LLM answer took longer than {self.total_timeout:g} s") from None
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except json.JSONDecodeError as exc:
                    raise UpstreamError(f"LLM provider sent invalid JSON in its stream: {data[:100]}") from exc
                if "error" in event:
                    raise UpstreamError(f"LLM provider error: {str(event['error'])[:300]}")
                for choice in event.get("choices", []):
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece

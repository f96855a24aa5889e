"""SIGTERM drains: `voicerag serve` stops taking connections, lets the answer being streamed finish, shuts the
application down cleanly, then exits (the LLM behind it is the local OpenAI-compatible test server, streaming
slowly)."""

from __future__ import annotations

import json
import signal
import subprocess

import httpx

from tests.e2e.fake_openai import Behaviour, create_fake_openai
from tests.helpers import serve, voicerag_serve


def test_sigterm_lets_the_streaming_answer_finish(tmp_path, facts) -> None:
    reply = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris [1]."
    behaviour = Behaviour(reply=reply, word_delay_s=0.25)  # about 3 s of streaming
    with serve(create_fake_openai(behaviour)) as provider:
        llm = {"VOICERAG_GENERATOR": "llm", "VOICERAG_LLM_BASE_URL": f"{provider}/v1", "VOICERAG_LLM_API_KEY": "test"}
        with voicerag_serve(tmp_path / "data", env=llm, output=subprocess.PIPE) as (server, url):
            body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in facts]}
            assert httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).status_code == 200
            question = {"question": "When was the Eiffel Tower completed?", "collection": "kb", "stream": True}
            events: list[tuple[str, dict]] = []
            kind = ""
            with httpx.stream("POST", f"{url}/v1/ask", json=question, timeout=60) as response:
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        events.append((kind, json.loads(line.removeprefix("data:"))))
                        if [k for k, _ in events].count("delta") == 1 and kind == "delta":
                            server.send_signal(signal.SIGTERM)  # mid-answer: the first words are out
            log = server.communicate(timeout=60)[0]
            # uvicorn shuts down cleanly, then re-raises the signal it caught: exit by SIGTERM, after the drain
            assert server.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in log, log
    text = "".join(data["text"] for kind, data in events if kind == "delta")
    assert text.strip() == reply and events[-1][0] == "done"  # the whole answer, after SIGTERM
    assert events[-1][1]["answer"] == reply and events[-1][1]["generator"] == "llm"
    try:
        httpx.get(f"{url}/healthz", timeout=5)
        raise AssertionError("the server still answers after SIGTERM")
    except httpx.ConnectError:
        pass

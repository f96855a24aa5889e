"""The voice routes under a real uvicorn server: /v1/voice/ask, the websocket stream (partials, silence ending
a turn, barge-in), bad audio, and the official openai package against /v1/audio/*."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import openai
import pytest
from websockets.sync.client import connect

from tests.e2e.fake_openai import Behaviour, create_fake_openai
from tests.helpers import serve, spoken_wav
from voicerag.api.app import create_app
from voicerag.speech.audio import decode_audio

QUESTION = "When was the Eiffel Tower completed?"


@pytest.fixture(scope="module")
def question_wav() -> bytes:
    return spoken_wav(QUESTION, tail_s=1.5)


def start_server(settings, facts):
    server = serve(create_app(settings))
    url = server.__enter__()
    body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in facts]}
    httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).raise_for_status()
    return server, url


@pytest.fixture
def base_url(make_settings, facts):
    server, url = start_server(make_settings(max_audio_mb=1, stt_partial_interval_s=0.5), facts)
    yield url
    server.__exit__(None, None, None)


def test_voice_ask_returns_transcript_answer_sources_and_audio(base_url, question_wav) -> None:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        reply = client.post(
            "/v1/voice/ask", files={"file": ("q.wav", question_wav, "audio/wav")}, data={"collection": "kb"}
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert "eiffel tower" in body["transcript"]["text"].lower()
        assert "1889" in body["answer"] and body["sources"][0]["document_id"] == "paris"
        assert {"stt", "retrieve", "tts_first_audio", "total"} <= set(body["timings_ms"])
        assert 0 < body["timings_ms"]["stt_model"] <= body["timings_ms"]["stt"]  # the model's time, without waiting
        url = body["audio"]["url"]
        assert "1889" not in url and "eiffel" not in url.lower() and body["audio"]["expires_in_s"] == 600  # opaque
        audio = client.get(url)
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        assert abs(decode_audio(audio.content).size / 16000 - body["audio"]["seconds"]) < 0.1
        unknown = client.get("/v1/voice/audio/not-a-real-token")
        assert unknown.status_code == 404 and "expired" in unknown.json()["detail"]
        inline = client.post(
            "/v1/voice/ask",
            files={"file": ("q.wav", question_wav, "audio/wav")},
            data={"collection": "kb", "inline_audio": "true", "audio_format": "mp3"},
        ).json()
        assert inline["transcript"]["cached"] is True and inline["cached"] is True  # same audio, same answer
        mp3 = base64.b64decode(inline["audio"]["base64"])
        assert abs(decode_audio(mp3).size / 16000 - inline["audio"]["seconds"]) < 0.2


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (b"", 422, "the audio is empty"),
        (b"hello, this is not audio" * 40, 415, "could not be decoded"),
        ("truncated", 422, "truncated"),
        (b"RIFF" + b"\0" * 2_000_000, 413, "at most 1048576 bytes"),
    ],
)
def test_bad_audio_is_a_4xx_that_says_what_is_accepted(base_url, question_wav, payload, status, message) -> None:
    data = question_wav[: len(question_wav) // 2] if payload == "truncated" else payload
    with httpx.Client(base_url=base_url, timeout=60) as client:
        reply = client.post("/v1/voice/ask", files={"file": ("q.wav", data, "audio/wav")}, data={"collection": "kb"})
        assert reply.status_code == status, reply.text
        assert message in reply.json()["detail"]
        assert client.get("/v1/collections/kb").json()["documents"] == 3  # nothing lost


def test_unknown_collection_is_404(base_url, question_wav) -> None:
    reply = httpx.post(
        f"{base_url}/v1/voice/ask", files={"file": ("q.wav", question_wav)}, data={"collection": "nope"}, timeout=60
    )
    assert reply.status_code == 404 and "collection 'nope' does not exist" in reply.json()["detail"]


def test_openai_package_transcribes_and_speaks_through_our_routes(base_url, question_wav, tmp_path) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    path = tmp_path / "question.wav"
    path.write_bytes(question_wav)
    with path.open("rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f).text
    assert "eiffel tower" in text.lower()
    with path.open("rb") as f:
        verbose = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json")
    assert verbose.duration > 1 and verbose.segments
    with path.open("rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    assert "00:00:00,000 -->" in srt
    starlette = tmp_path / "starlette.wav"  # heard as "store let's" without the prompt (test_speech.py)
    starlette.write_bytes(spoken_wav("By default, how many threads can Starlette's thread pool run at the same time?"))
    with starlette.open("rb") as f:
        prompted = client.audio.transcriptions.create(model="whisper-1", file=f, prompt="Starlette, Pydantic.")
    assert "starlette" in prompted.text.lower()
    with starlette.open("rb") as f, pytest.raises(openai.UnprocessableEntityError, match="prompt: at most 1000"):
        client.audio.transcriptions.create(model="whisper-1", file=f, prompt="Starlette " * 200)
    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input="The museum opens at nine in the morning.", response_format="wav"
    )
    audio = speech.read()
    assert audio[:4] == b"RIFF"
    with httpx.Client(base_url=base_url, timeout=60) as http:
        heard = http.post(
            "/v1/audio/transcriptions", files={"file": ("a.wav", audio)}, data={"response_format": "text"}
        )
    assert "museum" in heard.text.lower() and "morning" in heard.text.lower()
    mp3 = client.audio.speech.create(model="tts-1", voice="alloy", input="The museum opens at nine.").read()
    assert decode_audio(mp3).size > 16000  # mp3 by default, as OpenAI
    with pytest.raises(openai.UnprocessableEntityError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi", speed=9)


class Stream:
    """A websocket client that records every event, binary frames paired with their audio header."""

    def __init__(self, url: str):
        self.connection = connect(url.replace("http://", "ws://") + "/v1/voice/stream", max_size=None)
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Stream:
        self.ws = self.connection.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.__exit__(*exc)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def send_pcm(self, wav: bytes, frame_s: float = 0.25, pace: float = 1.0) -> None:
        """Stream the WAV's samples in frames, ``pace`` times slower than real time would be 1.0."""
        pcm = wav[44:]
        step = int(22050 * frame_s) * 2
        for i in range(0, len(pcm), step):
            self.ws.send(pcm[i : i + step])
            time.sleep(frame_s / pace)
            self.drain(0)

    def drain(self, timeout: float) -> None:
        try:
            while True:
                message = self.ws.recv(timeout=timeout)
                if isinstance(message, bytes):
                    self.events.append({"type": "binary", "bytes": len(message)})
                else:
                    self.events.append(json.loads(message))
        except TimeoutError:
            pass

    def until(self, kind: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["type"] == kind:
                    return event
            self.drain(0.2)
        raise AssertionError(f"no {kind!r} event in {timeout} s; got {[e['type'] for e in self.events]}")

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]


def test_websocket_streams_partials_final_answer_and_audio(base_url, question_wav) -> None:
    with Stream(base_url) as stream:
        stream.send({"type": "start", "collection": "kb", "sample_rate": 22050})
        stream.until("ready")
        stream.send_pcm(question_wav, pace=1.0)  # real time; the trailing silence ends the turn (no "end" sent)
        final = stream.until("final_transcript")
        done = stream.until("done")
    kinds = stream.kinds()
    assert "eiffel tower" in final["text"].lower()
    partials = [e["text"] for e in stream.events if e["type"] == "partial_transcript"]
    assert partials and kinds.index("partial_transcript") < kinds.index("final_transcript")
    assert "1889" in done["answer"]["answer"]
    header = next(i for i, e in enumerate(stream.events) if e["type"] == "audio")
    assert stream.events[header + 1] == {"type": "binary", "bytes": stream.events[header]["bytes"]}
    assert stream.events[header]["sample_rate"] == 22050 and stream.events[header]["bytes"] > 22050
    assert done["timings_ms"]["voice_to_first_audio"] > 0
    assert done["timings_ms"]["speculative"] == 1  # transcribed and answered during the pause, held, released
    assert kinds.index("answer_delta") < kinds.index("done")
    assert kinds.index("final_transcript") < kinds.index("answer_delta")  # nothing leaks before the turn ends


def test_speech_that_resumes_after_a_pause_drops_the_speculation(base_url) -> None:
    first = spoken_wav("When was the Eiffel Tower", tail_s=0.35)  # a pause long enough to speculate, too short to end
    rest = spoken_wav("completed in Paris?", lead_s=0.0, tail_s=1.5)
    with Stream(base_url) as stream:
        stream.send({"type": "start", "collection": "kb", "sample_rate": 22050})
        stream.until("ready")
        stream.send_pcm(first + rest[44:], pace=1.0)  # one stream: the PCM of both
        final = stream.until("final_transcript")
        done = stream.until("done")
    assert "eiffel tower" in final["text"].lower() and "completed" in final["text"].lower()  # the whole question
    assert [e["type"] for e in stream.events].count("final_transcript") == 1
    assert "1889" in done["answer"]["answer"]


def test_websocket_errors_are_events_and_the_session_survives(base_url) -> None:
    with Stream(base_url) as stream:
        stream.ws.send(b"\0\0" * 100)
        assert "start" in stream.until("error")["detail"]
        stream.events.clear()
        stream.send({"type": "start"})
        assert "name the collection" in stream.until("error")["detail"]
        stream.events.clear()
        stream.send({"type": "start", "collection": "nope"})
        stream.send({"type": "ask", "text": "hello?"})
        assert stream.until("error")["status"] == 404
        stream.send({"type": "start", "collection": "kb"})
        stream.events.clear()
        stream.ws.send(b"\0\0" * 16000)  # a second of silence, then "end": nothing was said
        stream.send({"type": "end"})
        assert "no speech was heard" in stream.until("error")["detail"]
        stream.send({"type": "ask", "text": "Who created Python?"})
        assert "Guido" in stream.until("done")["answer"]["answer"]


@pytest.fixture
def slow_voice_server(make_settings, facts):
    """TTS from a provider that takes 3 s a sentence: the answer is still playing when the user speaks again."""
    behaviour = Behaviour(delay_s=3.0)
    with serve(create_fake_openai(behaviour)) as provider:
        server, url = start_server(make_settings(tts="openai", tts_api_base=f"{provider}/v1"), facts)
        yield url
        server.__exit__(None, None, None)


def test_barge_in_cancels_the_answer_in_progress(slow_voice_server, question_wav) -> None:
    with Stream(slow_voice_server) as stream:
        stream.send({"type": "start", "collection": "kb", "sample_rate": 22050})
        stream.until("ready")
        stream.send({"type": "ask", "text": "How long does a cat sleep?"})
        stream.until("answer_delta")
        stream.send_pcm(question_wav, pace=4.0)  # the user speaks over the answer
        interrupted = stream.until("interrupted")
        assert interrupted["reason"] == "barge-in"
        before = stream.kinds()[: stream.events.index(interrupted)]
        assert "audio" not in before and "done" not in before  # the first answer never finished
        stream.send({"type": "end"})
        final = stream.until("final_transcript")
        assert "eiffel tower" in final["text"].lower()  # the new question was heard


def test_a_pause_after_words_that_read_unfinished_does_not_end_the_turn(base_url) -> None:
    """0.7 s of silence after "When was the Eiffel Tower completed in the" would end a turn on silence alone
    (``stt_end_silence_s`` 0.5); the end-of-turn model reads those words as unfinished, so the turn waits for the
    rest and the question is answered whole, once."""
    first = spoken_wav("When was the Eiffel Tower completed in the", tail_s=0.7)
    rest = spoken_wav("city of Paris?", lead_s=0.0, tail_s=1.8)
    with Stream(base_url) as stream:
        stream.send({"type": "start", "collection": "kb", "sample_rate": 22050})
        stream.until("ready")
        stream.send_pcm(first + rest[44:], pace=1.0)
        final = stream.until("final_transcript")
        done = stream.until("done")
    assert "paris" in final["text"].lower()  # the whole question, not the part before the pause
    assert [e["type"] for e in stream.events].count("final_transcript") == 1
    assert "1889" in done["answer"]["answer"]

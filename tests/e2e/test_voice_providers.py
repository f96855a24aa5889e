"""The remote speech clients (OpenAI transcriptions and speech, ElevenLabs streaming TTS) against a local server
speaking their wire formats; on failure they fall back to the local models, and fallbacks are never cached."""

from __future__ import annotations

import pytest

from tests.e2e.fake_openai import Behaviour, create_fake_openai
from tests.helpers import free_port, serve, spoken_wav
from voicerag import VoiceRAG
from voicerag.speech.audio import decode_audio


@pytest.fixture
def provider():
    behaviour = Behaviour()
    with serve(create_fake_openai(behaviour)) as url:
        yield behaviour, url


async def test_openai_transcription_wire_format(provider, make_settings) -> None:
    behaviour, url = provider
    settings = make_settings(stt="openai", stt_api_base=f"{url}/v1", stt_api_key="sk-stt", stt_remote_model="whisper-1")
    async with await VoiceRAG.open(settings) as rag:
        transcript = await rag.speech.transcribe_file(spoken_wav("Tell me about cats."))
        again = await rag.speech.transcribe_file(spoken_wav("Tell me about cats."))
    assert transcript.text == behaviour.transcript and not transcript.fallback
    request, headers = behaviour.requests[0], behaviour.headers[0]
    assert request["model"] == "whisper-1" and request["language"] == "en" and request["response_format"] == "json"
    assert headers["authorization"] == "Bearer sk-stt"
    assert headers["content-type"].startswith("multipart/form-data")
    uploaded = decode_audio(request["file"])  # the audio went up as a real 16 kHz WAV
    assert request["file"][:4] == b"RIFF" and uploaded.size > 16000
    assert len(behaviour.requests) <= 2 and (again.cached or len(behaviour.requests) == 2)
    assert "prompt" not in request


async def test_openai_transcription_sends_the_collections_names_as_its_prompt(provider, make_settings) -> None:
    behaviour, url = provider
    settings = make_settings(stt="openai", stt_api_base=f"{url}/v1", stt_api_key="sk-stt")
    async with await VoiceRAG.open(settings) as rag:
        audio = decode_audio(spoken_wav("How do I add CORS to Starlette?"))
        await rag.speech.transcribe(audio, prompt="Starlette, CORSMiddleware.")
    assert behaviour.requests[-1]["prompt"] == "Starlette, CORSMiddleware."


async def test_openai_transcription_failure_falls_back_to_whisper(provider, make_settings) -> None:
    behaviour, url = provider
    behaviour.status = 500
    settings = make_settings(stt="openai", stt_api_base=f"{url}/v1", http_retries=1)
    wav = spoken_wav("How long does a cat sleep?")
    async with await VoiceRAG.open(settings) as rag:
        transcript = await rag.speech.transcribe_file(wav)
        assert transcript.fallback and "cat" in transcript.text.lower()
        calls = len(behaviour.requests)
        behaviour.status = 200
        recovered = await rag.speech.transcribe_file(wav)
    assert not recovered.cached and recovered.text == behaviour.transcript  # the fallback was not cached
    assert len(behaviour.requests) == calls + 1


async def test_openai_speech_wire_format(provider, make_settings) -> None:
    behaviour, url = provider
    settings = make_settings(tts="openai", tts_api_base=f"{url}/v1", tts_api_key="sk-tts", tts_voice="nova")
    async with await VoiceRAG.open(settings) as rag:
        speech = await rag.speech.speak("One two three four. Five six.")
        await rag.speech.speak("One two three four. Five six.")
    assert speech.sample_rate == 24_000 and not speech.fallback
    assert abs(speech.seconds - 0.3 * 6) < 0.05  # the provider's audio, both sentences
    body = behaviour.requests[0]
    assert body == {
        "model": "gpt-4o-mini-tts",
        "input": "One two three four.",
        "voice": "nova",
        "response_format": "pcm",
        "speed": 1.0,
    }
    assert behaviour.headers[0]["authorization"] == "Bearer sk-tts"
    assert len(behaviour.requests) == 2  # the second time both sentences came from the cache


async def test_elevenlabs_streaming_wire_format(provider, make_settings) -> None:
    behaviour, url = provider
    settings = make_settings(tts="elevenlabs", elevenlabs_api_base=url, elevenlabs_api_key="el-test")
    async with await VoiceRAG.open(settings) as rag:
        speech = await rag.speech.speak("One two three four five six seven eight.")
    assert speech.sample_rate == 22_050 and not speech.fallback
    assert abs(speech.seconds - 0.3 * 8) < 0.05  # every streamed chunk arrived
    assert behaviour.queries[0] == {"output_format": "pcm_22050"}
    assert behaviour.headers[0]["xi-api-key"] == "el-test"
    assert behaviour.requests[0]["model_id"] == "eleven_flash_v2_5"
    assert behaviour.requests[0]["voice_settings"] == {"speed": 1.0}


@pytest.mark.parametrize("failure", ["bad key", "unreachable", "slow"])
async def test_remote_voice_failure_falls_back_to_piper(provider, make_settings, failure) -> None:
    behaviour, url = provider
    options = {"tts": "elevenlabs", "elevenlabs_api_base": url, "elevenlabs_api_key": "el-test", "http_retries": 0}
    if failure == "bad key":
        options["elevenlabs_api_key"] = "wrong"
    elif failure == "unreachable":
        options["elevenlabs_api_base"] = f"http://127.0.0.1:{free_port()}"
    else:
        behaviour.delay_s = 3
        options["tts_timeout_s"] = 0.5
    async with await VoiceRAG.open(make_settings(**options)) as rag:
        speech = await rag.speech.speak("The museum opens at nine in the morning.")
        assert speech.fallback and speech.sample_rate == 22_050 and speech.seconds > 0.5
        assert rag.cache.stats_json()["tts"]["tiers"]["memory"]["sets"] == 0  # fallbacks are not cached
        heard = await rag.speech.transcribe(decode_audio(_wav(speech)))
    assert "museum" in heard.text.lower()  # Piper really spoke it


def _wav(speech) -> bytes:
    from voicerag.speech.audio import encode_audio

    return encode_audio(speech.pcm, speech.sample_rate, "wav")


def test_validate_live_without_keys_measures_nothing(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "voicerag.cli", "validate-live", "--out-dir", str(tmp_path / "perf")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "skipped elevenlabs: ELEVENLABS_API_KEY is not set" in result.stdout
    assert "nothing measured" in result.stdout and not (tmp_path / "perf").exists()


def test_validate_live_records_raw_timings(provider, tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys

    _, url = provider
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env |= {"OPENAI_API_KEY": "sk-live", "OPENAI_BASE_URL": f"{url}/v1"}
    env |= {"ELEVENLABS_API_KEY": "el-test", "ELEVENLABS_BASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "voicerag.cli", "validate-live", "--out-dir", str(tmp_path / "perf"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["missing"]) == {"requesty"}
    measured = report["measured"]
    assert measured["openai_chat"]["ok"] and "1889" in measured["openai_chat"]["answer"]
    assert measured["openai_speech_and_transcription"]["ok"] and measured["elevenlabs_tts"]["ok"]
    # the fake's 4-dimensional embeddings are not text-embedding-3-small's 1536: recorded as a failure, not raised
    assert not measured["openai_embeddings"]["ok"] and "1536" in measured["openai_embeddings"]["error"]
    folder = tmp_path / "perf" / os.path.basename(report["folder"])
    assert folder.name.startswith("live_") and json.loads((folder / "timings.json").read_text()) == report
    assert "openai_chat" in (folder / "live.log").read_text()

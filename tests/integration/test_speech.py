"""Speech to text and text to speech with the real local models: accuracy, round trip, caching, limits."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from tests.helpers import IN_CI, spoken_wav
from voicerag import VoiceRAG
from voicerag.cache.tiers import FileTier
from voicerag.errors import InvalidInput, TooLarge
from voicerag.evaluation.stt import evaluate_stt, load_transcripts, normalizer
from voicerag.events import Audio, Done
from voicerag.speech.audio import decode_audio, encode_audio
from voicerag.speech.stt import WhisperTranscriber, encoder_frames


async def test_whisper_on_ljspeech_clips_under_a_wer_bound(make_settings, shared_data) -> None:
    async with await VoiceRAG.open(make_settings()) as rag:
        result = await evaluate_stt(rag.speech, shared_data / "speech", limit=8)
    assert result["clips"] == 8 and result["audio_seconds"] > 30
    assert result["wer"] < 0.15, result["per_clip"]
    assert all(c["hypothesis"] for c in result["per_clip"])


def test_the_encoder_sees_the_speech_plus_a_tail_at_least_the_minimum_window() -> None:
    window = np.zeros((80, 3000), np.float32)  # a 30 s window as faster-whisper pads it: all-zero frames after
    window[:, :400] = -0.5  # 4 s of audio (its log-mel frames are never all zero)
    assert encoder_frames(window, min_window_s=15, tail_s=3) == 1500  # the minimum window
    assert encoder_frames(window, min_window_s=5, tail_s=3) == 700  # the speech and its tail
    window[:, :2900] = -0.5
    assert encoder_frames(window, min_window_s=15, tail_s=3) == 3000  # never more than the window
    assert encoder_frames(np.zeros((80, 3000), np.float32), min_window_s=10, tail_s=3) == 1000
    assert encoder_frames(window, min_window_s=30, tail_s=0) == 3000  # 30: Whisper's whole window, as trained


async def test_a_trimmed_window_transcribes_clips_as_the_whole_window_does(make_settings, shared_data) -> None:
    """The default window against Whisper's full 30 s one, on recorded clips: about the same words, as well."""
    import jiwer

    pairs = load_transcripts(shared_data / "speech")[:8]
    normalize = normalizer()
    references = [normalize(text) for _, text in pairs]
    heard: dict[float, list[str]] = {}
    for window in (30.0, make_settings().stt_min_window_s):
        transcriber = WhisperTranscriber(make_settings(stt_min_window_s=window), asyncio.Semaphore(1))
        heard[window] = [
            normalize((await transcriber.transcribe(decode_audio(clip.read_bytes()), "en")).text) for clip, _ in pairs
        ]
    full, trimmed = heard.values()
    # about the same words: a few coin-flip spellings ("woodcutters" / "wood cutters") differ by CPU and version
    assert jiwer.wer(full, trimmed) <= 0.05, (full, trimmed)
    assert jiwer.wer(references, trimmed) <= jiwer.wer(references, full) + 0.01
    assert "window15+3" in transcriber.signature  # cached transcripts name the window they came from


async def test_tts_then_stt_round_trip(make_settings) -> None:
    async with await VoiceRAG.open(make_settings()) as rag:
        speech = await rag.speech.speak("The Eiffel Tower was completed in 1889. It stands in Paris.")
        assert speech.sample_rate == 22_050 and 2.5 < speech.seconds < 12
        audio = decode_audio(encode_audio(speech.pcm, speech.sample_rate, "wav"))
        transcript = await rag.speech.transcribe(audio)
    heard = normalizer()(transcript.text)
    assert "eiffel tower" in heard and "1889" in heard, heard  # Piper varies a little between runs


async def test_a_spoken_question_is_heard_with_the_collections_own_names(make_settings) -> None:
    """Whisper hears "Starlette's" as common words; with the collection's names as its prompt (what a voice
    session gives it) it spells the name as the documents do. The two readings are cached apart."""
    from voicerag import Document

    docs = [
        Document("pool.md", "By default, Starlette runs sync endpoints in a thread pool of 40 threads.", "Pool"),
        Document("cors.md", "Add the CORS middleware to a Starlette application to allow other origins.", "CORS"),
    ]
    wav = spoken_wav("By default, how many threads can Starlette's thread pool run at the same time?")
    async with await VoiceRAG.open(make_settings()) as rag:
        await rag.ingest("web", docs)
        prompt = await rag.voice.speech_prompt(["web"])
        audio = decode_audio(wav)
        plain = await rag.speech.transcribe(audio)
        prompted = await rag.speech.transcribe(audio, prompt=prompt)
    assert prompt == "Starlette."
    assert "starlette" not in plain.text.lower() and "starlette" in prompted.text.lower(), (plain.text, prompted.text)
    assert not prompted.cached


async def test_repeated_audio_is_transcribed_once(make_settings) -> None:
    wav = spoken_wav("How long does a cat sleep?")
    async with await VoiceRAG.open(make_settings()) as rag:
        first = await rag.speech.transcribe_file(wav)
        second = await rag.speech.transcribe_file(wav)
        stats = rag.cache.stats_json()["stt"]
    assert not first.cached and second.cached and second.text == first.text
    assert "cat" in first.text.lower()
    assert stats["computes"] == 1 and stats["hits"] == 1


async def test_an_abandoned_transcription_stops_the_model_before_its_next_step(make_settings) -> None:
    """A caller cancelled while the local model encodes: the model does not go on to decode, the slot comes back
    once it has stopped, and the next call transcribes as usual."""
    limit = asyncio.Semaphore(1)
    transcriber = WhisperTranscriber(make_settings(), limit)
    audio = decode_audio(spoken_wav("How long does a cat sleep?"))
    model = transcriber.model()  # the process's shared model: its instance is wrapped, then restored
    encoding, go_on, decoded = threading.Event(), threading.Event(), []
    encode, decode = model.encode, model.generate_with_fallback

    def held_encode(features):
        encoded = encode(features)
        encoding.set()
        go_on.wait(60)
        return encoded

    def counted_decode(*args, **kwargs):
        result = decode(*args, **kwargs)  # raises TranscriptionAbandoned before decoding an abandoned call
        decoded.append(1)
        return result

    model.encode, model.generate_with_fallback = held_encode, counted_decode
    try:
        call = asyncio.create_task(transcriber.transcribe(audio, "en"))
        assert await asyncio.to_thread(encoding.wait, 60)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        go_on.set()
        async with asyncio.timeout(60):  # only to catch a hang
            await limit.acquire()
        limit.release()
        assert decoded == []
        assert "cat" in (await transcriber.transcribe(audio, "en")).text.lower() and decoded == [1]
    finally:
        del model.encode, model.generate_with_fallback


async def test_tts_cache_hits_and_its_files_survive_a_restart(make_settings) -> None:
    text = "Cats sleep about fifteen hours a day. They were domesticated in the Near East."
    async with await VoiceRAG.open(make_settings()) as rag:
        first = await rag.speech.speak(text)
        again = await rag.speech.speak(text)
        stats = rag.cache.stats_json()["tts"]
        assert stats["computes"] == 2 and stats["tiers"]["memory"]["hits"] == 2  # two sentences, each once
        assert again.pcm == first.pcm
        await rag.cache.flush()  # the disk tier is written behind the response
        files = list(rag.settings.resolved_tts_cache_dir.glob("tts/*"))
        assert len(files) == 2
    async with await VoiceRAG.open(make_settings()) as restarted:
        after = await restarted.speech.speak(text)
        stats = restarted.cache.stats_json()["tts"]
    assert after.pcm == first.pcm
    assert stats["computes"] == 0 and stats["tiers"]["disk"]["hits"] == 2


async def test_disk_tier_evicts_least_recently_used_and_drops_partial_writes(tmp_path) -> None:
    root = tmp_path / "files"
    tier = FileTier(root, max_bytes=3 * (1000 + 8))
    for name in "abc":
        await tier.set(f"vr1:tts:{name}", name.encode() * 1000, 60, "tts", ())
    assert await tier.get("vr1:tts:a") == b"a" * 1000  # a is now the most recent
    await tier.set("vr1:tts:d", b"d" * 1000, 60, "tts", ())
    assert await tier.get("vr1:tts:b") is None and tier.evictions == 1
    assert await tier.get("vr1:tts:a") is not None and await tier.get("vr1:tts:d") is not None
    await tier.set("vr1:tts:old", b"x", -1, "tts", ())
    assert await tier.get("vr1:tts:old") is None  # expired
    (root / "tts" / "e.tmp").write_bytes(b"half")
    reopened = FileTier(root, max_bytes=10**6)
    assert not (root / "tts" / "e.tmp").exists()
    assert await reopened.get("vr1:tts:d") == b"d" * 1000
    assert await reopened.clear(policy="tts") == 2 and reopened.bytes_used() == 0  # a and d (c made room for old)


async def test_text_to_speak_is_checked(make_settings) -> None:
    async with await VoiceRAG.open(make_settings()) as rag:
        with pytest.raises(InvalidInput, match="empty"):
            await rag.speech.speak("   ")
        with pytest.raises(TooLarge, match="at most 3000"):
            await rag.speech.speak("word " * 5000)
        with pytest.raises(InvalidInput, match="nothing to speak"):
            await rag.speech.speak("[1] ...")


async def test_voice_answer_streams_sentences_as_audio(make_settings, facts) -> None:
    async with await VoiceRAG.open(make_settings(answer_sentences=2)) as rag:
        await rag.ingest("kb", facts)
        events = [e async for e in rag.voice.answer_events("When was the Eiffel Tower completed?", ["kb"])]
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and "delta" in kinds
    audio = [e for e in events if isinstance(e, Audio)]
    assert audio and [a.index for a in audio] == list(range(len(audio)))
    done = events[-1]
    assert isinstance(done, Done) and "1889" in done.answer.text
    assert all(np.frombuffer(a.speech.pcm, "<i2").std() > 100 for a in audio)  # real sound, not silence
    assert done.timings_ms is not None and done.timings_ms["tts_first_audio"] > 0


async def test_espeak_ng_voice(make_settings) -> None:
    import shutil

    if shutil.which("espeak-ng") is None:
        message = "espeak-ng is not installed (scripts/install-test-deps.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    async with await VoiceRAG.open(make_settings(tts_local="espeak")) as rag:
        speech = await rag.speech.speak("The museum opens at nine in the morning.")
        heard = await rag.speech.transcribe(decode_audio(encode_audio(speech.pcm, speech.sample_rate, "wav")))
    assert speech.sample_rate == 22_050 and speech.seconds > 1
    assert "museum" in heard.text.lower()


async def test_long_answers_are_shown_whole_but_spoken_within_the_budget(make_settings) -> None:
    from voicerag import Document

    long_text = " ".join(f"Fact number {i} about the tower is worth knowing." for i in range(40))
    async with await VoiceRAG.open(make_settings(answer_sentences=10, voice_max_spoken_chars=120)) as rag:
        await rag.ingest("kb", [Document("t", long_text, "Tower")])
        events = [e async for e in rag.voice.answer_events("Which facts about the tower are worth knowing?", ["kb"])]
    done = events[-1]
    assert isinstance(done, Done)
    answer = done.answer.text
    spoken = [e.sentence for e in events if isinstance(e, Audio)]
    assert len(answer) > 300 and spoken  # the whole answer as text
    assert sum(len(s) for s in spoken[:-1]) < 120 <= sum(len(s) for s in spoken) < 120 + 60  # whole sentences

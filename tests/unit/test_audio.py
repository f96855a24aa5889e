"""Audio decoding of every accepted format, encoding of every output format, and refusal of bad audio."""

from __future__ import annotations

import numpy as np
import pytest

from voicerag.errors import InvalidInput, TooLarge, UnsupportedFormat
from voicerag.speech.audio import SAMPLE_RATE, Limits, decode_audio, encode_audio, float_to_pcm16
from voicerag.speech.listening import for_listening, spoken_pieces

RATE = 22_050


def chirp(seconds: float = 1.5, rate: int = RATE) -> bytes:
    """A rising tone with an envelope: easy to recognise after a lossy codec."""
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.4 * np.sin(2 * np.pi * (200 + 300 * t) * t) * np.minimum(1, 4 * t) * np.minimum(1, 4 * (seconds - t))
    return float_to_pcm16(signal)


@pytest.mark.parametrize("fmt", ["wav", "flac", "opus", "webm", "mp3", "m4a", "aac"])
def test_every_input_format_decodes_to_16k_mono(fmt: str) -> None:
    pcm = chirp()
    audio = decode_audio(encode_audio(pcm, RATE, fmt))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size / SAMPLE_RATE - 1.5) < 0.1  # codec padding stays small
    reference = decode_audio(encode_audio(pcm, RATE, "wav"))
    n = min(reference.size, audio.size)
    # lossy codecs shift the signal by a few ms: compare loudness envelopes in 50 ms windows
    envelope = [np.sqrt(np.mean(a[: n - n % 800].reshape(-1, 800) ** 2, axis=1)) for a in (reference, audio)]
    assert np.corrcoef(*envelope)[0, 1] > 0.9


def test_pcm_output_is_raw_and_wav_has_a_header() -> None:
    pcm = chirp(0.5)
    assert encode_audio(pcm, RATE, "pcm") == pcm
    wav = encode_audio(pcm, RATE, "wav")
    assert wav[:4] == b"RIFF" and len(wav) == len(pcm) + 44


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", InvalidInput, "the audio is empty"),
        (b"this is a text file, not audio" * 50, UnsupportedFormat, "could not be decoded"),
        (b"\x00" * 5000, UnsupportedFormat, "could not be decoded"),
    ],
)
def test_bad_audio_is_refused_with_a_reason(data: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        decode_audio(data)
    assert "accepted" in caught.value.detail or "send" in caught.value.detail


def test_truncated_wav_is_refused() -> None:
    wav = encode_audio(chirp(), RATE, "wav")
    with pytest.raises(InvalidInput, match="truncated"):
        decode_audio(wav[: len(wav) // 2])
    with pytest.raises(InvalidInput, match="no data chunk"):
        decode_audio(wav[:30])


def test_truncated_compressed_audio_decodes_what_is_there_or_is_refused() -> None:
    mp3 = encode_audio(chirp(), RATE, "mp3")
    assert 0.5 < decode_audio(mp3[: len(mp3) // 2]).size / SAMPLE_RATE < 1.0
    with pytest.raises((InvalidInput, UnsupportedFormat)):
        decode_audio(mp3[:100])


def test_limits_on_size_and_duration() -> None:
    wav = encode_audio(chirp(3.0), RATE, "wav")
    with pytest.raises(TooLarge, match="at most 1000 bytes"):
        decode_audio(wav, Limits(max_bytes=1000, max_seconds=60))
    with pytest.raises(TooLarge, match="longer than 2 s"):
        decode_audio(wav, Limits(max_bytes=10**9, max_seconds=2))
    assert decode_audio(wav, Limits(max_bytes=10**9, max_seconds=4)).size == 3 * SAMPLE_RATE


def test_spoken_pieces_drop_citations_start_short_and_split_long_ones() -> None:
    text = "The tower was completed in 1889 [1]. It is 330 metres tall [1, 2].\nmake test runs everything"
    assert spoken_pieces(text) == [
        "The tower was completed in 1889.",
        "It is 330 metres tall.",
        "make test runs everything",
    ]
    first = "The museum is closed on Sundays and public holidays, but it opens late on Thursdays until nine."
    pieces = spoken_pieces(first)
    assert pieces[0] == "The museum is closed on Sundays"  # before a conjunction, within 40 characters
    assert " ".join(pieces) == first
    assert spoken_pieces(first, first_chars=60)[0] == "The museum is closed on Sundays and public holidays,"
    long = ", ".join(["a clause of several words"] * 40) + "."
    parts = spoken_pieces(long)
    assert len(parts) > 2 and len(parts[0]) <= 40 and all(len(p) <= 200 for p in parts)
    assert " ".join(parts) == long
    assert spoken_pieces("[1] ... ") == []
    assert spoken_pieces("One. Two is growing", complete_only=True) == ["One."]


def test_text_made_for_listening() -> None:
    answer = (
        "# Running the tests\n\n"
        "Run **make test** (see [the guide](https://example.com/guide)) e.g. before a release [2].\n\n"
        "```sh\nmake test\n```\n\n"
        "| setting | default |\n|---|---|\n| top_k | 5 |\n\n"
        "- It took 12,000 ms & used 3.5 GB on 2024-05-01; 95% passed at 20 °C for $40."
    )
    spoken = for_listening(answer)
    assert spoken.splitlines() == [
        "Running the tests",
        "Run make test (see the guide) for example before a release.",
        "It took 12000 milliseconds and used 3.5 gigabytes on May 1, 2024; 95 percent passed at 20 degrees "
        "Celsius for 40 dollars.",
    ]
    assert "http" not in spoken and "```" not in spoken and "|" not in spoken

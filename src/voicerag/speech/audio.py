"""Audio in and out with PyAV (its wheels carry FFmpeg): decode anything to 16 kHz mono float32, encode answers."""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np

from voicerag.errors import InvalidInput, TooLarge, UnsupportedFormat

SAMPLE_RATE = 16_000
ACCEPTED_INPUT = "wav, flac, ogg/opus, webm/opus, mp3, m4a/aac"
OUTPUT_FORMATS = ("wav", "mp3", "opus", "flac", "aac", "pcm", "webm", "m4a")
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "pcm": "audio/L16",
    "webm": "audio/webm",
    "m4a": "audio/mp4",
}
# PyAV container, codec and the sample rates the codec accepts (None: any)
_ENCODERS: dict[str, tuple[str, str, tuple[int, ...] | None]] = {
    "mp3": ("mp3", "libmp3lame", (44_100, 48_000, 32_000, 22_050, 24_000, 16_000)),
    "opus": ("ogg", "libopus", (48_000, 24_000, 16_000, 12_000, 8_000)),
    "flac": ("flac", "flac", None),
    "aac": ("adts", "aac", None),
    "webm": ("webm", "libopus", (48_000, 24_000, 16_000, 12_000, 8_000)),
    "m4a": ("ipod", "aac", None),
}


@dataclass
class Limits:
    """What a caller may send: bytes and seconds."""

    max_bytes: int
    max_seconds: float

    def check_size(self, data: bytes) -> None:
        if len(data) > self.max_bytes:
            raise TooLarge(
                f"the audio is {len(data)} bytes; at most {self.max_bytes} bytes are accepted (VOICERAG_MAX_AUDIO_MB)"
            )


def decode_audio(data: bytes, limits: Limits | None = None) -> np.ndarray:
    """Any common audio file -> 16 kHz mono float32 in [-1, 1]. Raises a 4xx error saying what was wrong."""
    if not data:
        raise InvalidInput(f"the audio is empty; send a non-empty file ({ACCEPTED_INPUT})")
    if limits:
        limits.check_size(data)
    _check_wav_complete(data)
    max_samples = int(limits.max_seconds * SAMPLE_RATE) if limits else None
    import av  # PyAV (FFmpeg) loads on the first audio, not with every command that never sees one

    pieces: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise UnsupportedFormat(f"the file holds no audio stream; accepted: {ACCEPTED_INPUT}")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
                    total += pieces[-1].size
                if max_samples is not None and total > max_samples:
                    raise TooLarge(
                        f"the audio is longer than {limits.max_seconds:g} s, the most accepted "
                        "(VOICERAG_MAX_AUDIO_SECONDS)"
                    )
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
    except (InvalidInput, UnsupportedFormat, TooLarge):
        raise
    except (av.FFmpegError, ValueError, EOFError, IndexError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UnsupportedFormat(f"the audio could not be decoded ({reason}); accepted: {ACCEPTED_INPUT}") from None
    audio = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    if audio.size < SAMPLE_RATE // 10:
        raise InvalidInput(
            f"the audio holds {audio.size / SAMPLE_RATE:.2f} s of sound, too short or truncated; send at least "
            f"0.1 s ({ACCEPTED_INPUT})"
        )
    return audio


def _check_wav_complete(data: bytes) -> None:
    """A WAV whose data chunk is shorter than its header says was cut off (FFmpeg would decode the rest silently)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if chunk_id == b"data":
            present = len(data) - offset - 8
            if size not in (0, 0xFFFFFFFF) and present < size:
                raise InvalidInput(
                    f"the WAV file is truncated: its header announces {size} bytes of audio, {present} are present; "
                    "send the whole file"
                )
            return
        offset += 8 + size + size % 2
    raise InvalidInput("the WAV file has no data chunk (truncated or not audio); send a complete WAV file")


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian signed 16-bit PCM -> float32 in [-1, 1] (an odd trailing byte is dropped)."""
    usable = len(data) - len(data) % 2
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def resample_pcm16(pcm: bytes, rate: int, target: int) -> bytes:
    """Linear resampling of 16-bit mono PCM (for speech, enough; used when a codec needs another rate)."""
    if rate == target or not pcm:
        return pcm
    source = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    n = max(1, int(round(source.size * target / rate)))
    positions = np.linspace(0, source.size - 1, n)
    return np.interp(positions, np.arange(source.size), source).astype("<i2").tobytes()


def encode_audio(pcm: bytes, sample_rate: int, fmt: str) -> bytes:
    """16-bit mono PCM at ``sample_rate`` -> wav, mp3, opus (in ogg), flac, aac (adts) or raw pcm. No samples
    (a text the voice had nothing to say for) give 20 ms of silence: encoders refuse an empty stream."""
    if not pcm:
        pcm = b"\0\0" * max(1, sample_rate // 50)
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm)
        return buffer.getvalue()
    if fmt not in _ENCODERS:
        raise InvalidInput(f"unknown audio format {fmt!r}; one of {', '.join(OUTPUT_FORMATS)}")
    container_name, codec, rates = _ENCODERS[fmt]
    rate = sample_rate if rates is None or sample_rate in rates else min(r for r in rates if r >= sample_rate)
    pcm = resample_pcm16(pcm, sample_rate, rate)
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_name) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()

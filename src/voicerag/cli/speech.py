"""Transcribe, say and talk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from voicerag.cli.common import (
    DEFAULT_COLLECTION,
    Collections,
    JsonFlag,
    Mode,
    app,
    out,
    print_json,
    run_with_rag,
    say_error,
)

# ---- voice -------------------------------------------------------------------------------------------------

AudioOut = Annotated[Path, typer.Option("--output", "-o", help="audio file to write; its suffix is the format")]


def _read_audio(path: Path) -> bytes:
    if not path.is_file():
        say_error(f"{path} does not exist")
        raise typer.Exit(2)
    return path.read_bytes()


def _audio_format(path: Path) -> str:
    from voicerag.speech.audio import OUTPUT_FORMATS

    fmt = path.suffix.lstrip(".").lower() or "wav"
    fmt = {"ogg": "opus", "raw": "pcm"}.get(fmt, fmt)
    if fmt not in OUTPUT_FORMATS:
        say_error(f"cannot write .{fmt}; use one of {', '.join(OUTPUT_FORMATS)}")
        raise typer.Exit(2)
    return fmt


def _write_audio(path: Path, speech: Any) -> None:
    from voicerag.speech.audio import encode_audio

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_audio(speech.pcm, speech.sample_rate, _audio_format(path)))


@app.command()
def transcribe(
    file: Annotated[Path, typer.Argument(help="audio: wav, flac, ogg, webm, mp3, m4a")],
    language: Annotated[str | None, typer.Option(help="spoken language (ISO 639-1)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Speech to text with the configured transcriber."""
    data = _read_audio(file)
    timings: dict[str, float] = {}
    transcript = run_with_rag(lambda rag: rag.speech.transcribe_file(data, language, timings))
    if as_json:
        print_json(transcript.to_json() | {"timings_ms": timings})
    else:
        out.print(transcript.text)


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="what to say")],
    output: AudioOut = Path("speech.wav"),
    speed: Annotated[float | None, typer.Option(help="0.25 .. 4.0")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Text to speech with the configured voice, written to a file (wav, mp3, opus, flac, aac, webm, m4a, pcm)."""
    _audio_format(output)
    timings: dict[str, float] = {}
    speech = run_with_rag(lambda rag: rag.speech.speak(text, timings, speed))
    _write_audio(output, speech)
    summary = {"output": str(output), "seconds": round(speech.seconds, 3), "sample_rate": speech.sample_rate}
    if as_json:
        print_json(summary | {"timings_ms": timings})
    else:
        out.print(f"wrote {output} ({summary['seconds']} s of audio)")


@app.command()
def talk(
    file: Annotated[Path, typer.Argument(help="the spoken question")],
    collections: Collections = [DEFAULT_COLLECTION],  # noqa: B006
    output: AudioOut = Path("answer.wav"),
    mode: Mode = None,
    as_json: JsonFlag = False,
) -> None:
    """A spoken question in, a spoken answer out: transcribe, answer from the documents, speak."""
    _audio_format(output)
    data = _read_audio(file)
    timings: dict[str, float] = {}
    transcript, answer, speech = run_with_rag(
        lambda rag: rag.voice.ask_aloud(data, collections, mode, None, None, timings)
    )
    _write_audio(output, speech)
    if as_json:
        print_json(
            {"transcript": transcript.text, **answer, "output": str(output), "audio_seconds": round(speech.seconds, 3)}
            | {"timings_ms": timings}
        )
        return
    out.print(Text.assemble(("You asked:", "bold"), f" {transcript.text}"))
    out.print(Text.assemble(("Answer:", "bold"), f" {answer['answer']}"))
    out.print(f"spoken answer: {output} ({speech.seconds:.1f} s)")

"""Voice routes: a spoken question answered aloud (one request, or a websocket stream), speech for any text,
and the OpenAI-compatible ``/v1/audio/transcriptions`` and ``/v1/audio/speech``."""

from __future__ import annotations

import base64
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from voicerag.api.routes import Caller, Rag, authenticate, get_principal
from voicerag.api.schemas import AUDIO_RESPONSES, TranscriptionOut, VoiceAnswerOut
from voicerag.api.voice_wire import Ask, Cancel, End, Start, WireFrames, parse_control
from voicerag.auth import ANONYMOUS, Principal
from voicerag.cache import CLIP_TTL_S
from voicerag.errors import InvalidInput, Unauthorized, VoiceRAGError
from voicerag.events import TurnError
from voicerag.speech.audio import CONTENT_TYPES, encode_audio
from voicerag.speech.tts import Speech
from voicerag.validation import collection_names
from voicerag.voice import VoiceSession

log = logging.getLogger(__name__)
MAX_PROMPT_CHARS = 1000  # a transcription prompt: Whisper reads about 224 tokens of it

router = APIRouter(dependencies=[Depends(get_principal)])
streams = APIRouter()  # the websocket authenticates in its first message (browsers cannot set its headers)

AudioFormat = Literal["wav", "mp3", "opus", "flac", "aac", "pcm", "webm", "m4a"]


def _audio_response(speech: Speech, fmt: str) -> Response:
    headers = {"X-Sample-Rate": str(speech.sample_rate), "X-Audio-Seconds": f"{speech.seconds:.3f}"}
    return Response(encode_audio(speech.pcm, speech.sample_rate, fmt), media_type=CONTENT_TYPES[fmt], headers=headers)


@router.post("/v1/voice/ask", tags=["voice"], response_model=VoiceAnswerOut)
async def voice_ask(
    rag: Rag,
    caller: Caller,
    file: Annotated[UploadFile, File(description="the spoken question: wav, flac, ogg, webm, mp3 or m4a")],
    collection: Annotated[str | None, Form()] = None,
    collections: Annotated[str | None, Form(description="several collections, comma-separated")] = None,
    mode: Annotated[Literal["dense", "lexical", "hybrid"] | None, Form()] = None,
    k: Annotated[int | None, Form()] = None,
    language: Annotated[str | None, Form()] = None,
    audio_format: Annotated[AudioFormat, Form()] = "wav",
    inline_audio: Annotated[bool, Form(description="answer audio as base64 in the JSON, not as a URL")] = False,
) -> dict[str, Any]:
    """Audio in, JSON out: transcript, answer, sources, the spoken answer (URL or base64) and per-stage timings."""
    started = time.perf_counter()
    names = collection_names(collection, collections, "form field 'collection' (or 'collections', comma-separated)")
    caller.require("read", names)
    timings: dict[str, float] = {}
    transcript, answer, speech = await rag.voice.ask_aloud(await file.read(), names, mode, k, language, timings)
    audio: dict[str, Any] = {
        "format": audio_format,
        "sample_rate": speech.sample_rate,
        "seconds": round(speech.seconds, 3),
    }
    if inline_audio:
        audio["base64"] = base64.b64encode(encode_audio(speech.pcm, speech.sample_rate, audio_format)).decode()
    else:
        audio["url"] = f"/v1/voice/audio/{await rag.speech.keep_clip(speech, caller.name)}?format={audio_format}"
        audio["expires_in_s"] = CLIP_TTL_S
    timings["total"] = round((time.perf_counter() - started) * 1000, 3)
    return {"transcript": transcript.to_json(), **answer, "audio": audio, "timings_ms": timings}


@router.get("/v1/voice/audio/{token}", tags=["voice"], response_class=Response, responses=AUDIO_RESPONSES)
async def voice_audio(
    rag: Rag,
    caller: Caller,
    token: Annotated[str, Path(max_length=64)],
    format: Annotated[AudioFormat, Query()] = "wav",
) -> Response:
    """An answer's audio from /v1/voice/ask (``audio.url``): an opaque link that works for 10 minutes, for the
    key that asked."""
    return _audio_response(await rag.speech.clip(token, caller.name), format)


@router.get("/v1/voice/speech", tags=["voice"], response_class=Response, responses=AUDIO_RESPONSES)
async def voice_speech(
    rag: Rag,
    caller: Caller,
    text: Annotated[str, Query(min_length=1)],
    format: Annotated[AudioFormat, Query()] = "wav",
) -> Response:
    """Speak ``text`` (cached per sentence; with keys, each key's sentences apart from every other's)."""
    return _audio_response(await rag.speech.speak(text, namespace=_tenant(caller)), format)


@streams.websocket("/v1/voice/stream")
async def voice_stream(websocket: WebSocket) -> None:
    """Streaming voice. Client -> server: a JSON ``start`` (collection, sample_rate, language, speak), then binary
    frames of 16-bit mono PCM, ``end`` to close a turn (or silence does), ``ask`` with ``text`` for a typed
    question, ``cancel`` to stop an answer. Server -> client: ``ready``, ``partial_transcript``,
    ``final_transcript``, ``sources``, ``answer_delta``, ``audio`` (JSON header, then a binary frame of 16-bit
    PCM), ``done``, ``interrupted`` (barge-in), ``error``. When the server needs a key, ``start`` carries it as
    ``api_key``; nothing is heard or answered before a ``start`` the key allows."""
    await websocket.accept()
    rag = websocket.app.state.rag
    frames = WireFrames(websocket)
    session = VoiceSession(rag.voice, frames)
    allowed = False
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                if message.get("bytes") is not None:
                    if not allowed:
                        raise Unauthorized("send a 'start' message (with 'api_key' when the server needs one) first")
                    await session.audio(message["bytes"])
                    continue
                allowed = await _control(rag, session, message.get("text") or "", allowed)
            except VoiceRAGError as exc:
                await frames(TurnError(exc.status, exc.detail))
    except WebSocketDisconnect:
        pass
    finally:
        await session.close()


async def _control(rag: Any, session: VoiceSession, text: str, allowed: bool) -> bool:
    """Handle one control message; returns whether the session is now allowed to go on."""
    message = parse_control(text)
    if isinstance(message, Start):
        caller = await authenticate(rag, f"Bearer {message.api_key}" if message.api_key is not None else None)
        caller.require("read", message.options.collections)
        await session.start(message.options)
        return True
    if not allowed:
        raise Unauthorized("send a 'start' message (with 'api_key' when the server needs one) first")
    if isinstance(message, End):
        await session.end()
    elif isinstance(message, Ask):
        await session.ask_text(message.text)
    elif isinstance(message, Cancel):
        await session.interrupt("cancelled")
    return True


# ---- OpenAI-compatible -------------------------------------------------------------------------------------


@router.post(
    "/v1/audio/transcriptions",
    tags=["openai"],
    response_model=TranscriptionOut,
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
)
async def transcriptions(
    rag: Rag,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[Literal["json", "text", "verbose_json", "srt", "vtt"], Form()] = "json",
    temperature: Annotated[float | None, Form()] = None,
) -> Any:
    """OpenAI's transcription endpoint, answered by the configured transcriber (``model`` is accepted as is;
    ``prompt``, words the speech is likely to hold, is given to it)."""
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(
            f"prompt: at most {MAX_PROMPT_CHARS} characters (got {len(prompt)}); Whisper reads about 224 tokens"
        )
    transcript = await rag.speech.transcribe_file(await file.read(), language, prompt=prompt or None)
    if response_format == "text":
        return PlainTextResponse(transcript.text)
    if response_format in ("srt", "vtt"):
        return PlainTextResponse(_subtitles(transcript.segments, response_format))
    if response_format == "verbose_json":
        return {
            "task": "transcribe",
            "language": transcript.language,
            "duration": transcript.duration_s,
            "text": transcript.text,
            "segments": [{"id": i, **s} for i, s in enumerate(transcript.segments)],
        }
    return {"text": transcript.text}


def _subtitles(segments: list[dict[str, Any]], kind: str) -> str:
    def stamp(seconds: float) -> str:
        ms = int(round(seconds * 1000))
        h, m, s, ms = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000
        return f"{h:02}:{m:02}:{s:02}{',' if kind == 'srt' else '.'}{ms:03}"

    blocks = [
        (f"{i + 1}\n" if kind == "srt" else "") + f"{stamp(s['start'])} --> {stamp(s['end'])}\n{s['text']}\n"
        for i, s in enumerate(segments)
    ]
    return ("WEBVTT\n\n" if kind == "vtt" else "") + "\n".join(blocks)


class SpeechIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str = Field(min_length=1)
    model: str = "tts-1"
    voice: str | dict[str, Any] = "alloy"
    response_format: AudioFormat = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)


@router.post("/v1/audio/speech", tags=["openai"], response_class=Response, responses=AUDIO_RESPONSES)
async def speech(body: SpeechIn, rag: Rag, caller: Caller) -> Response:
    """OpenAI's speech endpoint, spoken by the configured voice (``voice`` and ``model`` are accepted as is)."""
    speech = await rag.speech.speak(body.input, speed=body.speed, namespace=_tenant(caller))
    return _audio_response(speech, body.response_format)


def _tenant(caller: Principal) -> str:
    """The TTS cache namespace of free text: shared while there are no keys, one per key otherwise."""
    return "" if caller is ANONYMOUS else f"key:{caller.name}"

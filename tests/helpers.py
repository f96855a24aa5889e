"""Test helpers: real files in each format, a real uvicorn server in a thread, service reachability."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event

PG_URL = os.environ.get("VOICERAG_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VOICERAG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/9"  # the database tests may empty
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip outside CI when a service is missing; in CI, fail loudly."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must exercise it")
    pytest.skip(message)


def make_pdf(lines: list[str]) -> bytes:
    """A small valid PDF with one page of text (Helvetica), written by hand so no PDF writer is needed."""
    text = (
        "BT /F1 12 Tf 72 720 Td 14 TL "
        + " ".join("(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines)
        + " ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text.encode("latin-1") + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_docx(paragraphs: list[str]) -> bytes:
    from docx import Document

    doc = Document()
    for p in paragraphs:
        doc.add_paragraph(p)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def understate_zip_entry(data: bytes, name: str, claimed: int = 4096) -> bytes:
    """``data`` (a zip) with ``name``'s sizes in its local and central headers set to ``claimed`` bytes, whatever
    the entry inflates to: a zip that lies about its own sizes."""
    import struct

    patched, wanted = bytearray(data), name.encode()
    for signature, size_at, name_at, length_at in ((b"PK\x03\x04", 22, 30, 26), (b"PK\x01\x02", 24, 46, 28)):
        at = patched.find(signature)
        while at >= 0:
            length = struct.unpack_from("<H", patched, at + length_at)[0]
            if bytes(patched[at + name_at : at + name_at + length]) == wanted:
                struct.pack_into("<I", patched, at + size_at, claimed)
            at = patched.find(signature, at + 4)
    return bytes(patched)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app under a real uvicorn server in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def spoken_wav(text: str, lead_s: float = 0.3, tail_s: float = 1.0) -> bytes:
    """``text`` spoken by the local Piper voice, as a 22,050 Hz WAV with silence around it (a test question).
    Piper's noise is off, so the same text always gives the same audio."""
    from piper import SynthesisConfig

    from voicerag.speech.audio import encode_audio
    from voicerag.speech.tts import load_piper

    voice = load_piper()
    rate = voice.config.sample_rate
    still = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    speech = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, still))
    silence = b"\0\0"
    return encode_audio(silence * int(lead_s * rate) + speech + silence * int(tail_s * rate), rate, "wav")


async def wait_for_sync(rag: Any, name: str, generation: int, loaded: bool = True) -> None:
    """Wait (on the event loop, bounded only to catch a hang) until ``rag`` serves ``generation`` (or, with
    ``loaded`` False, has dropped the collection to load it afresh on next use)."""
    async with asyncio.timeout(30):
        while True:
            state = rag.retriever.loaded(name)
            if (state is None and not loaded) or (state is not None and state.generation >= generation):
                return
            await asyncio.sleep(0.005)


@contextmanager
def count_statements(rag: Any):
    """The SQL statements ``rag`` sends for the calling task while the block runs (the change feed's own
    catch-up, in its background task, is not the read path)."""
    seen: list[str] = []
    caller = asyncio.current_task()

    def record(_conn, _cursor, statement, *_args) -> None:
        if asyncio.current_task() is caller:
            seen.append(statement)

    event.listen(rag.pools.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(rag.pools.engine.sync_engine, "before_cursor_execute", record)


def wait_until(condition: Any, process: subprocess.Popen | None = None, limit_s: float = 120) -> None:
    """Poll ``condition`` until it holds; bounded only to catch a hang, and failing at once if ``process``
    (the server the condition depends on), when given, has exited."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert process is None or process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def get_json(url: str) -> Any:
    """``GET url`` as JSON, or None while nothing answers there."""
    try:
        return httpx.get(url, timeout=10).json()
    except httpx.HTTPError:
        return None


@contextmanager
def voicerag_serve(
    data_dir: Any,
    *args: str,
    serve_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    output: Any = None,
    cwd: Any = None,
) -> Iterator[tuple[subprocess.Popen, str]]:
    """``voicerag [ARGS] serve --port P [SERVE_ARGS]`` in its own process, as a user starts it (no VOICERAG_*
    variables but the data dir and ``env``; ``data_dir`` None: the default store, as ``make run`` has it), from
    ``cwd``; yields the process and its URL once /readyz is 200; terminates it after. ``output`` receives its
    stdout and stderr (``subprocess.PIPE`` to read them); by default they go to ``serve-PORT.log`` beside the
    data dir (or in ``cwd``), whose tail is printed if the test fails inside the block."""
    port = free_port()
    variables = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    if data_dir is not None:
        variables["VOICERAG_DATA_DIR"] = str(data_dir)
    variables |= {"VOICERAG_PRELOAD_SPEECH": "false"} | (env or {})
    command = [sys.executable, "-m", "voicerag.cli", *args, "serve", "--port", str(port), *serve_args]
    log = None
    if output is None:
        folder = os.path.dirname(os.fspath(data_dir)) if data_dir is not None else os.fspath(cwd or ".")
        log = output = open(os.path.join(folder, f"serve-{port}.log"), "w")  # noqa: SIM115 - closed below
    stderr = subprocess.STDOUT if output is subprocess.PIPE or log else output
    server = subprocess.Popen(command, env=variables, stdout=output, stderr=stderr, text=True, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), server)
        yield server, url
    except BaseException:
        if log:
            log.flush()
            with open(log.name) as written:
                print(f"--- tail of {log.name} ---\n" + "".join(written.readlines()[-60:]))
        raise
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(60)
        if log:
            log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


class ManualClock:
    """A ``voicerag.clock.Clock`` that moves only when told: tests advance time instead of sleeping."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

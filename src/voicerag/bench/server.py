"""A ``voicerag serve`` in its own process for the HTTP scenarios, so the load generator does not share its
event loop and interpreter lock with the server it measures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class BenchServer:
    url: str
    pid: int


@contextmanager
def server_process(data_dir: Path, log_file: Path, **settings: Any) -> Iterator[BenchServer]:
    """Start ``voicerag serve`` on a free port with ``settings`` as VOICERAG_* variables."""
    port = _free_port()
    command = [sys.executable, "-m", "voicerag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with _process(command, port, data_dir, log_file, settings) as server:
        yield server


@contextmanager
def floor_process(data_dir: Path, log_file: Path) -> Iterator[BenchServer]:
    """Start the floor app (``voicerag.bench.floor``) over the same data dir on a free port."""
    port = _free_port()
    command = [sys.executable, "-m", "voicerag.bench.floor", str(data_dir), str(port)]
    with _process(command, port, data_dir, log_file, {}) as server:
        yield server


def _environment(data_dir: Path, settings: dict[str, Any]) -> dict[str, str]:
    """This process's environment without its VOICERAG_* variables, plus ``settings`` as VOICERAG_* ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env |= {f"VOICERAG_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.items()}
    return env | {"VOICERAG_DATA_DIR": str(data_dir), "VOICERAG_LOG_LEVEL": "WARNING"}


@contextmanager
def worker_processes(count: int, data_dir: Path, logs: Path, **settings: Any) -> Iterator[None]:
    """``count`` ``voicerag worker`` processes with ``settings`` as VOICERAG_* variables, stopped after."""
    env = _environment(data_dir, settings)
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    try:
        for n in range(count):
            with (logs / f"worker_{count}_{n}.log").open("ab") as log:
                command = [sys.executable, "-m", "voicerag.cli", "worker"]
                processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def _process(
    command: list[str], port: int, data_dir: Path, log_file: Path, settings: dict[str, Any]
) -> Iterator[BenchServer]:
    env = _environment(data_dir, settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the bench server exited with {process.returncode}; see {log_file}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bench server did not become ready; see {log_file}")
            time.sleep(0.2)
        yield BenchServer(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

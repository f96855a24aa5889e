"""The README's Quick start works as written, as a user runs it: the server started as ``make run`` starts it
(in its own folder), the shell block run from a documents folder elsewhere, and its Python snippets in their
own processes; no data-dir setting anywhere, so all of them must find the one per-user store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import make_pdf, voicerag_serve

ROOT = Path(__file__).resolve().parents[2]


def blocks(language: str) -> list[str]:
    """The README's fenced blocks in ``language``, from the Quick start section to the HTTP API section."""
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start") : text.index("## HTTP API")]
    return re.findall(rf"```{language}\n(.*?)```", quick, flags=re.S)


def test_quick_start_shell_and_python(tmp_path: Path) -> None:
    home, server_dir, docs = tmp_path / "home", tmp_path / "server", tmp_path / "documents"
    for folder in (home, server_dir, docs):
        folder.mkdir()
    user = {"HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}  # a user with no store yet
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")} | user
    env |= {"VOICERAG_PRELOAD_SPEECH": "false"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the venv's voicerag
    (docs / "report.pdf").write_bytes(make_pdf(["The revenue in 2024 was 12 million euros."]))
    (docs / "notes").mkdir()
    (docs / "notes" / "q3.md").write_text("# Q3\n\nThe third quarter closed with 40 new customers.\n")

    with voicerag_serve(None, env=user, cwd=server_dir) as (_, url):
        port = url.rsplit(":", 1)[1]
        shell = blocks("bash")[0].replace("localhost:8000", f"127.0.0.1:{port}")
        outputs = []
        for line in shell.splitlines():
            command = line.split("  #")[0].strip()
            if not command:
                continue
            done = subprocess.run(
                ["bash", "-c", command], cwd=docs, env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, (command, done.stderr)
            outputs.append(done.stdout)
        ask, http_ask, upload = json.loads(outputs[1]), json.loads(outputs[2]), json.loads(outputs[3])
        assert ask["found"] and "12 million" in ask["answer"]
        assert http_ask["found"] and "12 million" in http_ask["answer"]
        assert upload["unchanged"] == 1

        library, openai_client = blocks("python")[:2]
        snippet = docs / "snippet.py"
        snippet.write_text(library)
        done = subprocess.run([sys.executable, str(snippet)], cwd=docs, env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "Paris is the capital of France" in done.stdout, done.stderr
        snippet.write_text(openai_client.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        done = subprocess.run([sys.executable, str(snippet)], cwd=docs, env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "Paris" in done.stdout, done.stderr

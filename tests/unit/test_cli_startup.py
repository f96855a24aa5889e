"""The command line starts without the libraries only its commands need (``voicerag --help`` stays quick)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pydantic", "sqlalchemy", "numpy", "httpx", "av", "onnxruntime", "faiss", "asyncio", "alembic")


def test_help_loads_none_of_the_heavy_libraries() -> None:
    probe = (
        "import sys; sys.argv = ['voicerag', '--help']\n"
        "from voicerag.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"import json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Usage" in done.stdout and loaded == []

"""HTTP load from ``wrk`` (Debian's package) when it is installed: a C load generator in its own process, so
the client does not compete with the bench's Python for the interpreter (at 32 clients on two cores the Python
client is the bottleneck: compare ``http_ask_c32`` with ``http_ask_cached_c32`` in benchmarks/bench_full.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SCRIPT = """
local bodies = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(n %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
    + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "seconds": %%f, "errors": %%d, '
      .. '"p50_ms": %%f, "p95_ms": %%f, "p99_ms": %%f, "max_ms": %%f}\\n',
    summary.requests, summary.duration / 1e6, errors, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(url: str, bodies: list[dict[str, Any]], connections: int, seconds: float) -> dict[str, Any]:
    """POST ``bodies`` (in turn) to ``url`` from ``connections`` keep-alive connections for ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(SCRIPT % ", ".join(_lua_string(json.dumps(b)) for b in bodies))
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url]
        output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    result = json.loads(line.removeprefix("WRK_JSON "))
    result = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
    return result | {
        "rps": round(result["requests"] / result["seconds"], 2),
        "concurrency": connections,
        "client": "wrk",
    }

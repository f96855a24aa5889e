"""Peak RSS and wall time of 'voicerag ingest' (default settings, a fresh store each run), as JSON.

    python scripts/ingest_memory.py ../shared/data/docs-qa/corpus \
        ../shared/data/docs-qa/corpus/starlette/docs/release-notes.md > benchmarks/ingest_memory.json

Each path is ingested in its own process under /usr/bin/time (its maximum resident set size)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile


def measure(path: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as data:
        env = os.environ | {"VOICERAG_DATA_DIR": data}
        command = ["/usr/bin/time", "-f", "%M %e", sys.executable, "-m", "voicerag.cli", "ingest", path, "-c", "m"]
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env)
        if not done.stdout.strip():  # exit 1 with a report means files were skipped (listed); no report: failed
            raise SystemExit(done.stderr)
        peak_kb, seconds = done.stderr.strip().splitlines()[-1].split()
        report = json.loads(done.stdout)
    return {
        "path": path,
        "documents": report["documents"],
        "chunks": report["chunks"],
        "skipped_files": len(report.get("skipped") or []),
        "peak_rss_mb": round(int(peak_kb) / 1024, 1),
        "seconds": float(seconds),
    }


if __name__ == "__main__":
    runs = [measure(path) for path in sys.argv[1:]]
    json.dump({"machine": platform.node(), "cpus": os.cpu_count(), "runs": runs}, sys.stdout, indent=2)
    print()

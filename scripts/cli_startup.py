"""Wall time of the command line's quick paths, as JSON: ``voicerag --help``, ``--version`` and ``ask`` on a
one-file collection (a fresh store ingested first), each run N times, interleaved; p50 and spread. With
``--before SRC`` (another checkout's ``src``) the same commands also run from that source, interleaved with
these, for a side-by-side comparison.

    git worktree add /tmp/before REV
    python scripts/cli_startup.py --runs 10 --before /tmp/before/src > benchmarks/cli_startup.json"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "min_s": round(ordered[0], 3),
        "max_s": round(ordered[-1], 3),
        "runs_s": [round(s, 3) for s in seconds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--before", type=Path, help="another checkout's src folder, run interleaved")
    args = parser.parse_args()
    cli = [str(Path(sys.executable).parent / "voicerag")]  # the installed command, as a user runs it
    commands = {
        "help": [*cli, "--help"],
        "version": [*cli, "--version"],
        "ask": [*cli, "ask", "How do I run the tests?", "-c", "kb"],
    }
    sources = {"this": None, "before": args.before} if args.before else {"this": None}
    with tempfile.TemporaryDirectory() as data:
        envs = {
            label: os.environ | {"VOICERAG_DATA_DIR": data} | ({"PYTHONPATH": str(src)} if src else {})
            for label, src in sources.items()
        }
        subprocess.run(
            [*cli, "ingest", str(README), "-c", "kb", "--json"], env=envs["this"], check=True, capture_output=True
        )
        times: dict[str, dict[str, list[float]]] = {label: {name: [] for name in commands} for label in sources}
        for _ in range(args.runs):
            for name, command in commands.items():
                for label, env in envs.items():
                    times[label][name].append(wall(command, env))
    json.dump(
        {
            "what": "wall seconds of each command (the installed voicerag script) in a new process, interleaved",
            "command": " ".join(["python scripts/cli_startup.py", *sys.argv[1:]]),
            "machine": platform.node(),
            "cpus": os.cpu_count(),
            "results": {
                label: {name: summary(seconds) for name, seconds in by_command.items()}
                for label, by_command in times.items()
            },
        },
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()

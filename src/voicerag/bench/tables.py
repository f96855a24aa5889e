"""What the rendered documents share: the benchmark JSON read once, and Markdown tables and durations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table ("–" for a missing value)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float | None) -> str:
    """A duration in milliseconds as it reads best: "4.21 ms", "42.1 ms", "1.42 s"."""
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


class Sources:
    """The JSON files of benchmarks/, read once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._cache: dict[str, Any] = {}

    def __call__(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = json.loads((self.folder / name).read_text())
        return self._cache[name]

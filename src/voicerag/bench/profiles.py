"""How big each scenario is (the profiles) and what one bench run is asked to do."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Profile:
    """How big each scenario is."""

    synthetic: int
    requests: int
    concurrency: int
    http_seconds: float
    sweep: tuple[int, ...]
    sweep_seconds: float
    speech_clips: int
    index_queries: int
    ingest_docs: int


PROFILES = {
    "quick": Profile(60, 30, 4, 2.0, (1, 4), 1.0, 1, 20, 60),
    "full": Profile(100_000, 2000, 32, 15.0, (1, 2, 4, 8, 16, 32, 64), 6.0, 5, 200, 2000),
}


@dataclass
class BenchConfig:
    data_dir: Path
    profile: Profile
    beir: Path | None = None
    zipf: float = 1.1
    scenarios: set[str] | None = None  # None: all
    speech: Path | None = None  # recorded clips (transcripts.tsv) for stt and voice; else synthesised questions
    docs_qa: Path | None = None  # a documentation set (corpus/, questions.jsonl): voice turns on its questions
    redis_url: str | None = None  # the queue for the jobs scenarios (a database the bench may fill and empty)
    samples: dict[str, list[float]] = field(default_factory=dict)  # latencies per scenario, for the plot

    def wants(self, name: str) -> bool:
        return self.scenarios is None or name in self.scenarios


SWEEP = re.compile(r"http_ask_c\d+")  # the concurrency sweep's scenarios


SCENARIO_GROUPS = (
    "ingest",
    "embed",
    "search",
    "ask",
    "index",
    "stt",
    "tts",
    "voice",
    "http",
    "floor",
    "replica",
    "jobs",
)

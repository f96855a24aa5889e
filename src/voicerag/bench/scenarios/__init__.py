"""The bench's scenario groups, one module each, each declaring its ``GROUP``; ``voicerag.bench.runner`` runs
the groups asked for, in the order of ``voicerag.bench.runner.GROUPS``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voicerag.bench.profiles import BenchConfig
from voicerag.bench.stats import summarize
from voicerag.config import Settings


@dataclass
class BenchRun:
    """One bench invocation as every group sees it: its config, corpus questions and request mix, the report's
    scenarios so far, and the spoken questions (made once, on first use)."""

    config: BenchConfig
    base: Settings
    questions: list[str]
    mix: list[str]
    clips: Callable[[], list[tuple[str, bytes]]]
    scenarios: dict[str, Any] = field(default_factory=dict)

    def record(self, name: str, latencies: list[float], wall: float, errors: int, **extra: Any) -> dict[str, Any]:
        """Summarise one scenario's latencies into the report (the raw samples go to ``config.samples``)."""
        self.config.samples[name] = latencies
        self.scenarios[name] = summarize(latencies, wall, errors) | extra
        return self.scenarios[name]


@dataclass(frozen=True)
class Group:
    """A scenario group: the ``--scenarios`` names that select it, and how it runs on a ``BenchRun``. Its own
    functions take only what they use; ``run`` hands them their part of the run."""

    wants: tuple[str, ...]
    run: Callable[[BenchRun], Awaitable[None]]

    def wanted(self, config: BenchConfig) -> bool:
        return any(config.wants(name) for name in self.wants)

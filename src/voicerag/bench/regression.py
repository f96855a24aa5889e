"""Regression detection against a saved baseline, with noise-aware rules.

A figure regresses only when it is worse than the baseline by more than its tolerance *and* by more than an
absolute floor (sub-millisecond jitter is not a regression), where the tolerance widens to the spread seen
between the repeated runs of this bench (a noisy figure cannot fail on noise alone). Figures are the medians
of the repeated runs."""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from typing import Any

# figure path -> (direction, relative tolerance, absolute floor); "lower" means lower is better
RULES: dict[str, tuple[str, float, float]] = {
    "scenarios.search_dense_warm.p50_ms": ("lower", 0.30, 0.5),
    "scenarios.search_hybrid_cold.p50_ms": ("lower", 0.30, 1.0),
    "scenarios.search_hybrid_cold.p95_ms": ("lower", 0.50, 2.0),
    "scenarios.search_lexical_cold.p50_ms": ("lower", 0.30, 1.0),
    "scenarios.ask_uncached.p50_ms": ("lower", 0.30, 2.0),
    "scenarios.ask_uncached.p95_ms": ("lower", 0.50, 4.0),
    "scenarios.ask_cached.p50_ms": ("lower", 0.50, 0.5),
    "scenarios.search_batched.rps": ("higher", 0.25, 5.0),
    "scenarios.http_ask.rps": ("higher", 0.25, 5.0),
    "scenarios.http_ask.p95_ms": ("lower", 0.50, 5.0),
    "ratios.search_overhead_vs_faiss": ("lower", 0.40, 0.5),
    "ratios.cached_ask_speedup": ("higher", 0.40, 0.5),
    "ratios.batching_throughput_gain": ("higher", 0.25, 0.1),
}


@dataclass
class Finding:
    figure: str
    baseline: float
    current: float
    tolerance: float
    regressed: bool

    def describe(self) -> str:
        change = (self.current - self.baseline) / self.baseline * 100 if self.baseline else 0.0
        verdict = "REGRESSION" if self.regressed else "ok"
        return (
            f"{verdict:10} {self.figure}: {self.baseline:g} -> {self.current:g} ({change:+.1f}%, "
            f"tolerance {self.tolerance * 100:.0f}%)"
        )


def figure(report: dict[str, Any], path: str) -> float | None:
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) else None


def median_of_runs(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The first report with every numeric figure of the scenarios and ratios replaced by the median over all
    reports, and ``spread`` (max - min) / median per figure the rules watch."""
    merged = copy.deepcopy(reports[0])
    for section in ("scenarios", "ratios"):
        _median_into(merged[section], [r[section] for r in reports])
    spread = {}
    for path in RULES:
        values = [v for r in reports if (v := figure(r, path)) is not None]
        if len(values) > 1 and statistics.median(values):
            spread[path] = round((max(values) - min(values)) / abs(statistics.median(values)), 4)
    merged["runs"] = len(reports)
    merged["spread"] = spread
    merged["p50_ms_per_run"] = {
        name: [r["scenarios"][name].get("p50_ms") for r in reports]
        for name, figures in reports[0]["scenarios"].items()
        if isinstance(figures, dict) and "p50_ms" in figures
    }
    return merged


def _median_into(target: dict[str, Any], sources: list[dict[str, Any]]) -> None:
    for key, value in target.items():
        others = [s.get(key) for s in sources]
        if isinstance(value, dict):
            _median_into(value, [o for o in others if isinstance(o, dict)])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers = [o for o in others if isinstance(o, int | float)]
            target[key] = round(statistics.median(numbers), 4)


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> list[Finding]:
    """One finding per watched figure present in both reports."""
    findings = []
    for path, (direction, tolerance, floor) in RULES.items():
        old, new = figure(baseline, path), figure(current, path)
        if old is None or new is None:
            continue
        noise = max(current.get("spread", {}).get(path, 0.0), baseline.get("spread", {}).get(path, 0.0))
        allowed = max(tolerance, noise)
        worse = new - old if direction == "lower" else old - new
        regressed = worse > abs(old) * allowed and worse > floor
        findings.append(Finding(path, old, new, allowed, regressed))
    return findings

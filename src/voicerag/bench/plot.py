"""The bench report as a PNG: latency CDF per scenario, and throughput (and p95) against concurrency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voicerag.bench.profiles import SWEEP


def write_plot(report: dict[str, Any], path: Path) -> Path:
    """Draw from the report's quantiles (so a committed JSON can be re-plotted without re-running)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cdf, sweep) = plt.subplots(1, 2, figsize=(15, 6))
    styles = ("-", "--", ":", "-.")
    named = [(n, s) for n, s in sorted(report["scenarios"].items()) if s.get("quantiles_ms") and not SWEEP.fullmatch(n)]
    for i, (name, s) in enumerate(named):
        q = s["quantiles_ms"]
        levels = [float(k) / 100 for k in q]
        cdf.plot(list(q.values()), levels, marker=".", linestyle=styles[i // 10 % 4], label=name)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency (ms, log scale)")
    cdf.set_ylabel("fraction of requests")
    cdf.set_title("Latency CDF per scenario")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize=7, loc="lower right")
    rows = report.get("tables", {}).get("throughput_vs_concurrency", [])
    if rows:
        xs = [r["concurrency"] for r in rows]
        sweep.plot(xs, [r["rps"] for r in rows], marker="o", color="tab:blue", label="requests/s")
        sweep.set_xscale("log", base=2)
        sweep.set_xlabel("concurrent clients (HTTP /v1/ask, Zipf question mix)")
        sweep.set_ylabel("requests per second", color="tab:blue")
        latency = sweep.twinx()
        latency.plot(xs, [r["p95_ms"] for r in rows], marker="s", color="tab:red", label="p95 ms")
        latency.set_ylabel("p95 latency (ms)", color="tab:red")
        sweep.set_title("Throughput and p95 against concurrency")
        sweep.grid(True, alpha=0.3)
    else:
        sweep.text(0.5, 0.5, "no HTTP sweep in this run", ha="center", va="center")
        sweep.set_axis_off()
    machine = report.get("machine", {})
    figure.suptitle(
        f"voicerag bench, {report['config']['corpus']} · {machine.get('cpus')} CPUs "
        f"{machine.get('cpu_model') or ''} · {machine.get('memory_gb')} GB"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

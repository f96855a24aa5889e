"""The shipped Prometheus rules and Grafana dashboard refer only to metrics the server exposes."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from voicerag import Settings, VoiceRAG

ROOT = Path(__file__).resolve().parents[2]


def exposed_names(tmp_path: Path) -> set[str]:
    async def render() -> str:
        async with await VoiceRAG.open(Settings(data_dir=tmp_path, preload_speech=False)) as rag:
            with rag.metrics.stage("retrieve"):
                pass
            rag.metrics.requests.labels("/v1/ask", "POST", "200", rag.metrics.worker).observe(0.01)
            rag.metrics.replica_sync.labels(rag.metrics.worker).observe(0.01)
            rag.metrics.errors.labels("http_5xx", rag.metrics.worker).inc()
            return rag.metrics.render(rag.cache, rag.pools).decode()

    text = asyncio.run(render())
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_rules_and_dashboard_use_exposed_metrics(tmp_path: Path) -> None:
    names = exposed_names(tmp_path)
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((ROOT / "deploy/grafana/voicerag.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {m for expr in exprs for m in re.findall(r"\b(?:voicerag|process)_[a-z_]+\b", expr)}
    assert used and used <= names, used - names
    assert all(rule["annotations"]["summary"] for group in rules["groups"] for rule in group["rules"])


def test_promtool_accepts_the_alerting_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; scripts/install-test-deps.sh adds it)")
    result = subprocess.run(
        [promtool, "check", "rules", str(ROOT / "deploy/prometheus/alerts.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_example_compose_file_uses_real_commands_and_settings() -> None:
    from typer.main import get_command

    from voicerag.cli import app

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    environment = compose["x-voicerag"]["environment"]
    settings = {f"VOICERAG_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= settings, set(environment) - settings
    services = [s for s in compose["services"].values() if str(s.get("command", "")).startswith("voicerag")]
    assert {s["command"].split()[1] for s in services} == {"serve", "worker"} <= commands
    assert sum(s["command"].split()[1] == "serve" for s in services) == 2

"""The measured tables in README.md and docs/PERFORMANCE_*.md are exactly what the committed JSON renders to."""

from pathlib import Path

from voicerag.bench.docs import DOCUMENTS, render_all

ROOT = Path(__file__).resolve().parents[2]


def test_docs_tables_match_the_committed_bench_json() -> None:
    rendered = render_all(ROOT)
    assert len(rendered) == len(DOCUMENTS)
    for path, text in rendered.items():
        assert "<!-- bench:" in text, f"{path.name} has no rendered table"
        assert path.read_text() == text, f"{path.name} is stale: run python scripts/render_perf_docs.py"

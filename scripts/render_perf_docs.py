"""Re-render the measured tables of README.md and docs/PERFORMANCE_*.md from benchmarks/*.json."""

from pathlib import Path

from voicerag.bench.docs import render_all

root = Path(__file__).resolve().parents[1]
for path, text in render_all(root).items():
    if path.read_text() != text:
        path.write_text(text)
        print(f"updated {path.relative_to(root)}")

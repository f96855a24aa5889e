"""Bench, bench-check, soak, load and validate-live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from voicerag.cli.common import (
    Collections,
    JsonFlag,
    app,
    console,
    folding_table,
    out,
    print_json,
    require_bench_extra,
    say_error,
    say_note,
)
from voicerag.errors import InvalidInput


@app.command()
def bench(
    profile: Annotated[str, typer.Option(help="quick (a smoke test) or full (make bench)")] = "quick",
    synthetic: Annotated[int | None, typer.Option(help="synthetic documents (one chunk each) when no --beir")] = None,
    beir: Annotated[Path | None, typer.Option(help="BEIR folder for corpus and questions")] = None,
    requests: Annotated[int | None, typer.Option(help="requests per scenario")] = None,
    concurrency: Annotated[int | None, typer.Option(help="clients for the throughput scenarios")] = None,
    zipf: Annotated[float, typer.Option(help="Zipf exponent of the question mix")] = 1.1,
    scenarios: Annotated[
        str | None,
        typer.Option(
            help="comma-separated groups: ingest,embed,search,ask,index,stt,tts,voice,http,floor,replica,jobs"
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="run N times; figures are the medians")] = 1,
    speech: Annotated[
        Path | None, typer.Option(help="recorded clips for stt and voice (a folder with transcripts.tsv)")
    ] = None,
    clips: Annotated[int | None, typer.Option(min=1, help="spoken clips for stt and voice")] = None,
    docs_qa: Annotated[
        Path | None,
        typer.Option(help="a documentation set (corpus/, questions.jsonl): voice turns on its questions, spoken"),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis for the jobs scenarios, a database the bench may use (e.g. /14)")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="keep the ingested corpus here between runs")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the JSON report here")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG: latency CDFs, throughput vs concurrency")] = None,
    baseline: Annotated[Path | None, typer.Option(help="compare with this report; exit 1 on a regression")] = None,
    save_baseline: Annotated[Path | None, typer.Option(help="write this run as a baseline")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Benchmark every layer side by side: ingest, embeddings, search (vs raw FAISS), ask (uncached, cached,
    semantic), index kinds at equal recall, speech, voice-to-voice, and HTTP load with the performance layer
    on and off."""
    import dataclasses
    import tempfile

    require_bench_extra()
    from voicerag.bench.profiles import PROFILES, SCENARIO_GROUPS, BenchConfig
    from voicerag.bench.regression import median_of_runs
    from voicerag.bench.runner import run_bench

    if profile not in PROFILES:
        say_error(f"--profile must be one of {', '.join(PROFILES)}")
        raise typer.Exit(2)
    chosen = PROFILES[profile]
    overrides = {"synthetic": synthetic, "requests": requests, "concurrency": concurrency, "speech_clips": clips}
    chosen = dataclasses.replace(chosen, **{k: v for k, v in overrides.items() if v is not None})
    groups = set(scenarios.split(",")) if scenarios else None
    if groups and not groups <= set(SCENARIO_GROUPS):
        say_error(f"unknown scenarios {sorted(groups - set(SCENARIO_GROUPS))}")
        raise typer.Exit(2)
    if speech:  # checked now, not after the other scenarios have run for minutes
        from voicerag.evaluation.stt import load_transcripts

        try:
            load_transcripts(speech)
        except InvalidInput as error:
            say_error(f"--speech: {error}")
            raise typer.Exit(2) from None
    if docs_qa:
        from voicerag.evaluation.docs import is_docs_set

        if not is_docs_set(docs_qa):
            say_error(f"--docs-qa: {docs_qa} needs a corpus/ folder and a questions.jsonl file")
            raise typer.Exit(2)
    import asyncio

    with tempfile.TemporaryDirectory(prefix="voicerag-bench-") as scratch:
        folder = data_dir or Path(scratch)
        reports = []
        for run in range(repeat):
            console.print(f"bench run {run + 1} of {repeat} ({profile} profile) ...")
            config = BenchConfig(folder, chosen, beir, zipf, groups, speech, docs_qa, redis_url)
            reports.append(asyncio.run(run_bench(config)))
    result = median_of_runs(reports) if repeat > 1 else reports[0]
    if repeat > 1 and "ingest" in reports[0]["scenarios"]:
        result["scenarios"]["ingest"] = reports[0]["scenarios"]["ingest"]  # later runs find nothing new
    for path in (out_file, save_baseline):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=2) + "\n")
    if plot:
        from voicerag.bench.plot import write_plot

        write_plot(result, plot)
    if not as_json:
        _print_bench(result)
    failed = _check_baseline(result, baseline, quiet=as_json) if baseline else False
    print_json(result)
    if failed:
        raise typer.Exit(1)


def _print_bench(result: dict[str, Any]) -> None:
    table = folding_table("scenario", "p50 ms", "p95 ms", "p99 ms", "max ms", "rps", "errors", "extra")
    for name, s in result["scenarios"].items():
        if "p50_ms" not in s:
            console.print(f"{name}: {json.dumps(s)}")
            continue
        extra = {k: s[k] for k in ("recall_at_10", "answer_hit_rate", "rtf", "concurrency") if k in s}
        figures = (s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"], s["rps"], s["errors"])
        table.add_row(name, *(str(f) for f in figures), json.dumps(extra) if extra else "")
    console.print(table)
    console.print(result["ratios"])


def _check_baseline(result: dict[str, Any], baseline: Path, quiet: bool = False) -> bool:
    """Print each watched figure against the baseline; True when one regressed."""
    from voicerag.bench.regression import compare

    if not baseline.is_file():
        say_error(f"baseline {baseline} does not exist (write one with --save-baseline)")
        raise typer.Exit(2)
    findings = compare(result, json.loads(baseline.read_text()))
    for finding in findings:
        if finding.regressed or not quiet:
            console.print(finding.describe(), style="red" if finding.regressed else None)
    regressed = [f.figure for f in findings if f.regressed]
    if regressed:
        say_error(", ".join(regressed), "regression:")
    elif not findings:
        say_note("the baseline shares no watched figure with this run", "yellow")
    return bool(regressed)


@app.command("bench-check")
def bench_check(
    report: Annotated[Path, typer.Argument(help="a bench JSON report")],
    baseline: Annotated[Path, typer.Option(help="the baseline report")],
) -> None:
    """Compare a saved bench report with a baseline; exit 1 naming each figure that regressed."""
    if not report.is_file():
        say_error(f"{report} does not exist")
        raise typer.Exit(2)
    if _check_baseline(json.loads(report.read_text()), baseline):
        raise typer.Exit(1)


@app.command()
def soak(
    url: Annotated[str, typer.Argument(help="a running server, e.g. http://127.0.0.1:8000")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
    question: Annotated[list[str], typer.Option("--question", "-q", help="a question (repeatable)")],
    seconds: Annotated[float, typer.Option(min=5)] = 120,
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    key: Annotated[str | None, typer.Option(help="API key, when the server needs one")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Mixed traffic for a while, sampling the server's memory: does it settle (slope over the last half)?"""
    from voicerag.bench.soak import soak as run_soak

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    import asyncio

    result = asyncio.run(run_soak(url, collection, question, seconds, concurrency, headers))
    if as_json:
        print_json(result)
        return
    rss = result["rss_mb"]
    out.print(f"requests: {result['requests']}")
    out.print(
        f"RSS: {rss['start']:.0f} MB at start, {rss['max']:.0f} MB at most, {rss['end']:.0f} MB at the end; "
        f"{rss['slope_last_half_mb_per_min']:+.1f} MB/min over the last half: "
        + ("settled" if result["plateau"] else "still growing")
    )


@app.command()
def load(
    url: Annotated[str, typer.Argument(help="a running server, e.g. http://127.0.0.1:8000")],
    collections: Collections,
    questions: Annotated[Path | None, typer.Option(help="a file of questions, one per line")] = None,
    question: Annotated[list[str] | None, typer.Option("--question", "-q", help="a question (repeatable)")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 32,
    duration: Annotated[float | None, typer.Option(help="seconds (default 10 unless --requests)")] = None,
    requests: Annotated[int | None, typer.Option(help="stop after this many requests")] = None,
    rate: Annotated[float | None, typer.Option(help="target requests per second (open loop)")] = None,
    zipf: Annotated[float, typer.Option(help="Zipf exponent of the question mix")] = 1.1,
    as_json: JsonFlag = False,
) -> None:
    """Load a running server's /v1/ask with N concurrent clients; latency percentiles, throughput, errors."""
    from voicerag.bench.corpus import zipf_mix
    from voicerag.bench.load import LoadPlan, run_load

    pool = list(question or [])
    if questions:
        pool += [line.strip() for line in questions.read_text().splitlines() if line.strip()]
    if not pool:
        say_error("give questions with --question or --questions FILE")
        raise typer.Exit(2)
    mix = zipf_mix(pool, 10_000, zipf)
    if duration is None and requests is None:
        duration = 10.0

    def body(i: int) -> dict[str, Any]:
        return {"question": mix[i % len(mix)], "collections": collections}

    plan = LoadPlan(url.rstrip("/") + "/v1/ask", body, concurrency, duration, requests, rate)
    import asyncio

    result = asyncio.run(run_load(plan))
    if not as_json:
        keys = ("requests", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms", "rps", "peak_in_flight", "statuses")
        table = folding_table("figure", "value")
        for key in keys:
            table.add_row(key, str(result[key]))
        out.print(table)
    else:
        print_json(result)


@app.command("validate-live")
def validate_live(
    out_dir: Annotated[Path, typer.Option(help="where the raw timings and logs go")] = Path("logs/perf"),
    as_json: JsonFlag = False,
) -> None:
    """Run the remote provider paths (OpenAI, Requesty, ElevenLabs) whose keys are set; record raw timings."""
    import asyncio

    from voicerag.bench.live import validate_live as run_live

    result = asyncio.run(run_live(out_dir))
    if as_json:
        print_json(result)
        return
    for name in result["missing"]:
        out.print(f"skipped {name}: {result['missing'][name]}")
    for name, figures in result["measured"].items():
        out.print(f"{name}: {figures}")
    if result["measured"]:
        out.print(f"raw timings and logs: {result['folder']}")
    else:
        out.print("nothing measured: no provider key is set")

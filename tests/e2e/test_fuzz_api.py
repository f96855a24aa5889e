"""Schemathesis against the running server's own OpenAPI schema, a bounded number of cases per route (a
longer run: ``VOICERAG_TEST_FUZZ_EXAMPLES=500 make test`` or the command in docs/SECURITY.md), asked with no key
(a keyless loopback server), with an admin key and with a read key: no route answers with a 5xx, and every response
matches the schema the route declares."""

from __future__ import annotations

import os
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.conftest import FACTS
from tests.helpers import serve
from voicerag import Settings
from voicerag.api.app import create_app

EXAMPLES = int(os.environ.get("VOICERAG_TEST_FUZZ_EXAMPLES", "25"))


ROLES = {  # who asks: no key on a keyless loopback server, then an admin key and a read key once keys exist
    "keyless": None,
    "admin": ["admin"],
    "read": ["read:kb"],
}


@pytest.fixture(scope="module", params=list(ROLES))
def api_schema(request, tmp_path_factory):
    """The served schema and the headers to send: the same routes tried by each role."""
    import asyncio

    from voicerag import Document, VoiceRAG

    data_dir = tmp_path_factory.mktemp(f"fuzz-{request.param}") / "data"
    app_settings = Settings(  # small limits: a fuzzed text to speak stays short enough to finish in time
        data_dir=data_dir, preload_speech=False, cache_memory_mb=32, max_upload_mb=2, max_speech_chars=300
    )
    headers: dict[str, str] = {}
    if ROLES[request.param] is not None:

        async def make_key() -> str:
            async with await VoiceRAG.open(app_settings) as rag:
                await rag.ingest("kb", [Document(d.id, d.text, d.title) for d in FACTS])
                return (await rag.keys.create(f"fuzz-{request.param}", ROLES[request.param]))[0]

        headers = {"Authorization": f"Bearer {asyncio.run(make_key())}"}
    with serve(create_app(app_settings)) as url:
        if not headers:
            body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in FACTS]}
            assert httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).status_code == 200
        deadline = time.monotonic() + 120  # a hang guard: /readyz says 503 "warming" until the indexes are in
        while httpx.get(f"{url}/readyz", timeout=60).status_code != 200:
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.05)
        yield schemathesis.openapi.from_url(f"{url}/openapi.json"), headers  # the schema is public


def test_no_server_errors_and_declared_responses(api_schema) -> None:
    schema, headers = api_schema
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # every route is in the schema

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            if case.method == "DELETE" and "name" in (case.path_parameters or {}):
                case.path_parameters = dict(case.path_parameters) | {"name": "scratch"}  # keep 'kb' for the rest
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance], timeout=120
            )

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected, reported together below
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())

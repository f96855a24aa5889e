"""Schemathesis against the running server's own OpenAPI schema, a bounded number of cases per route (a
longer run: ``VOICERAG_TEST_FUZZ_EXAMPLES=500 make test`` or the command in docs/SECURITY.md): no route answers
with a 5xx, and every response matches the schema the route declares."""

from __future__ import annotations

import os

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


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    app_settings = Settings(data_dir=data_dir, preload_speech=False, cache_memory_mb=32, max_upload_mb=2)
    with serve(create_app(app_settings)) as url:
        body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in FACTS]}
        assert httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).status_code == 200
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_no_server_errors_and_declared_responses(api_schema) -> None:
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
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
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected, reported together below
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())

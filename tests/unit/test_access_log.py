"""The access log keeps query names, not values: the text of GET /v1/voice/speech?text= never lands in it."""

from __future__ import annotations

import logging

from voicerag.api.access_log import RedactQueryValues, redact_access_log


def test_query_values_are_dropped_from_access_lines() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v1/voice/speech?text=my+secret+plan&format=wav", "1.1", 200), None,
    )  # fmt: skip
    assert RedactQueryValues().filter(record)
    line = record.getMessage()
    assert "secret" not in line and "/v1/voice/speech?text=...&format=..." in line
    plain = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s %s %s", ("a", "GET", "/healthz"), None)
    RedactQueryValues().filter(plain)
    assert plain.getMessage() == "a GET /healthz"


def test_the_served_app_installs_it_once(make_settings) -> None:
    from tests.helpers import serve
    from voicerag.api.app import create_app

    with serve(create_app(make_settings())):
        redact_access_log()  # a second call adds nothing
        filters = [f for f in logging.getLogger("uvicorn.access").filters if isinstance(f, RedactQueryValues)]
        assert len(filters) == 1

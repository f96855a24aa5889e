"""problem+json responses (RFC 9457)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem+json response; the ``error`` member lets OpenAI clients show the message too."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail} | extra
    body["error"] = {"message": detail, "type": title.lower().replace(" ", "_"), "code": status}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)

"""The access log names what was asked for, never what was said: query values are replaced, so ``GET
/v1/voice/speech?text=...`` does not write the user's text (or a document's) to the log."""

from __future__ import annotations

import logging


class RedactQueryValues(logging.Filter):
    """On uvicorn's access records (args: client, method, path with query, HTTP version, status), keep each query
    parameter's name and drop its value."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            path, _, query = args[2].partition("?")
            names = [part.split("=", 1)[0] for part in query.split("&") if part]
            record.args = (*args[:2], f"{path}?" + "&".join(f"{name}=..." for name in names), *args[3:])
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger (once; after uvicorn has configured its logging)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQueryValues) for f in logger.filters):
        logger.addFilter(RedactQueryValues())

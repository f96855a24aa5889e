"""Errors meant for people: each maps to an HTTP status and says what was wrong and what is accepted."""

from __future__ import annotations


class VoiceRAGError(Exception):
    """Base class; ``status`` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidInput(VoiceRAGError):
    status = 422
    title = "Invalid input"


class DocumentError(InvalidInput):
    title = "Unreadable document"


class UnsupportedFormat(VoiceRAGError):
    status = 415
    title = "Unsupported format"


class TooLarge(VoiceRAGError):
    status = 413
    title = "Too large"


class NotFound(VoiceRAGError):
    status = 404
    title = "Not found"


class UnknownCollection(NotFound):
    """A collection that the store does not hold (the CLI then says which store it looked in)."""


class UpstreamError(VoiceRAGError):
    status = 502
    title = "Upstream provider failed"


class Unauthorized(VoiceRAGError):
    status = 401
    title = "Unauthorized"


class Forbidden(VoiceRAGError):
    status = 403
    title = "Forbidden"


class TooManyRequests(VoiceRAGError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_s: float):
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class DatabaseUnavailable(VoiceRAGError):
    """The database connection was lost (a PostgreSQL backend killed, a failover) and a retry did not get through."""

    status = 503
    title = "Database unavailable"

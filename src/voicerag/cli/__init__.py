"""The ``voicerag`` command: serve, ingest, search, ask, transcribe, say, talk, collections, cache, config, eval,
bench. One module per command group; ``common`` holds what they share."""

# `voicerag --help` lists the commands in the order these modules register them
# isort: off
from voicerag.cli import documents, speech, bench  # noqa: F401
from voicerag.cli import settings, postgres, keys, cache, evaluation  # noqa: F401

# isort: on
from voicerag.cli.common import app

__all__ = ["app"]

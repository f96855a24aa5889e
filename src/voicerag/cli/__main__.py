"""``python -m voicerag.cli``."""

from voicerag.cli import app

app()

"""ASGI entry point for multi-worker serving (``uvicorn voicerag.api.asgi:app --workers N``)."""

from voicerag.api.app import create_app
from voicerag.config import load_settings

app = create_app(load_settings(), freeze_heap=True)

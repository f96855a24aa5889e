"""VoiceRAG: voice-enabled retrieval-augmented question answering, built for speed.

The public names load on first use (PEP 562), so importing a leaf such as ``voicerag.errors`` or starting the
command line does not build the composition root and its libraries."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicerag.app import VoiceRAG
    from voicerag.config import Settings, apply_preset, load_settings
    from voicerag.documents.loaders import Document

__all__ = ["VoiceRAG", "Settings", "load_settings", "apply_preset", "Document"]
__version__ = "0.1.0"

_HOMES = {
    "VoiceRAG": "voicerag.app",
    "Settings": "voicerag.config",
    "load_settings": "voicerag.config",
    "apply_preset": "voicerag.config",
    "Document": "voicerag.documents.loaders",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'voicerag' has no attribute {name!r}")

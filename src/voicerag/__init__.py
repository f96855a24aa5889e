"""VoiceRAG: voice-enabled retrieval-augmented question answering, built for speed."""

from voicerag.app import VoiceRAG
from voicerag.config import Settings, apply_preset, load_settings
from voicerag.documents.loaders import Document

__all__ = ["VoiceRAG", "Settings", "load_settings", "apply_preset", "Document"]
__version__ = "0.1.0"

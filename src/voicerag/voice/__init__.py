"""Voice: the agent that answers aloud, and the streamed turn (endpointing, speculation, barge-in)."""

from voicerag.voice.agent import VoiceAgent
from voicerag.voice.turn import TurnOptions, VoiceSession

__all__ = ["TurnOptions", "VoiceAgent", "VoiceSession"]

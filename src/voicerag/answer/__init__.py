"""Answers: extractive (default, no LLM) and OpenAI-compatible chat (streamed), behind one protocol."""

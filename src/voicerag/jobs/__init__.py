"""Ingestion jobs: uploads queued in the store and on arq (Redis), run by ``voicerag worker`` processes."""

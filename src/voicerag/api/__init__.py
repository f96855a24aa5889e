"""HTTP API: FastAPI routes, OpenAI-compatible routes, metrics, the web page."""

"""The bench's scenario groups, one module each; ``voicerag.bench.runner`` runs the ones asked for."""

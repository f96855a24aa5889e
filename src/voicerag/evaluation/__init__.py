"""Quality evaluations: retrieval (BEIR layout) and extractive answers (SQuAD answers)."""

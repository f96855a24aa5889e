"""Retrieval: embeddings, the dense vector index, the lexical index and hybrid search."""

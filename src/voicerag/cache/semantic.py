"""Semantic answer cache: a question close enough (cosine) to an answered one of the same collections,
generations and answer settings reuses its answer. Opt-in; the threshold is chosen for >= 99% precision."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np


class SemanticIndex:
    """Per bucket (collections + generations + answer settings), the vectors of answered questions and the
    answer-cache key parts of each. Buckets of old generations simply stop being asked for and age out."""

    def __init__(self, threshold: float, max_buckets: int = 256, max_per_bucket: int = 10_000):
        self.threshold = threshold
        self.max_buckets = max_buckets
        self.max_per_bucket = max_per_bucket
        self._buckets: OrderedDict[Any, tuple[list[np.ndarray], list[Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.lookups = 0

    def add(self, bucket: Any, vector: np.ndarray, answer_key: Any) -> None:
        with self._lock:
            vectors, keys = self._buckets.setdefault(bucket, ([], []))
            self._buckets.move_to_end(bucket)
            vectors.append(np.asarray(vector, np.float32))
            keys.append(answer_key)
            if len(vectors) > self.max_per_bucket:
                del vectors[0], keys[0]
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)

    def lookup(self, bucket: Any, vector: np.ndarray) -> tuple[Any, float] | None:
        """The answer key of the closest answered question at or above the threshold, with its similarity."""
        with self._lock:
            self.lookups += 1
            entry = self._buckets.get(bucket)
            if not entry or not entry[0]:
                return None
            vectors, keys = entry
            similarities = np.stack(vectors) @ np.asarray(vector, np.float32)
            best = int(np.argmax(similarities))
            if similarities[best] < self.threshold:
                return None
            self.hits += 1
            return keys[best], float(similarities[best])

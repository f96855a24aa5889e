"""Local speech models are loaded once per process and shared (they are immutable and thread-safe to run)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: dict[Hashable, Any] = {}


def load_once(key: tuple[str, Hashable], loader: Callable[[], Any]) -> Any:
    """The model for ``key`` (a description and its parameters), loading it on the first call only."""
    with _lock:
        if key not in _loaded:
            started = time.perf_counter()
            _loaded[key] = loader()
            log.info("%s loaded in %.2fs", key[0], time.perf_counter() - started)
        return _loaded[key]

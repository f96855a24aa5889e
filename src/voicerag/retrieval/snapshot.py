"""Index files of one collection: the dense and lexical indexes saved under unique names, and one manifest
that names them, replaced atomically. Concurrent writers (other workers, other replicas on the same disk)
never share a file name, and a reader sees either the old manifest or the new one, never a mix."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from voicerag.retrieval.index import DenseBackend, VectorIndex
from voicerag.retrieval.lexical import BM25Index

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 2  # 2: the lexical index reads titles with texts; an older snapshot is rebuilt from the store
KEEP_UNREFERENCED_S = 120  # another writer's files, written but not yet named by its manifest, are left alone


@dataclass
class Snapshot:
    dense: VectorIndex
    lexical: BM25Index


def save_snapshot(directory: Path, generation: int, dense: VectorIndex, lexical: BM25Index) -> None:
    """Write both indexes under fresh names, then point the manifest at them; remove superseded files."""
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"{generation}-{uuid.uuid4().hex[:12]}"
    dense_file, lexical_file = f"dense-{tag}.faiss", f"lexical-{tag}.npz"
    dense_meta = dense.save(directory / dense_file)
    lexical.save(directory / lexical_file)
    manifest = {"format": FORMAT, "generation": generation, "dense": dense_meta | {"file": dense_file}}
    manifest["lexical"] = {"file": lexical_file}
    tmp = directory / f".{MANIFEST}.{tag}.tmp"
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, directory / MANIFEST)
    _remove_superseded(directory, {dense_file, lexical_file, MANIFEST})


def _remove_superseded(directory: Path, keep: set[str]) -> None:
    """Remove files no manifest names once they are old enough that no writer can still be about to name them."""
    cutoff = time.time() - KEEP_UNREFERENCED_S
    for path in directory.iterdir():
        try:
            if path.name not in keep and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except OSError:
            continue


def load_snapshot(directory: Path, backend: DenseBackend) -> Snapshot | None:
    """The saved indexes, or None when there are none or they cannot be read (the caller rebuilds)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        if manifest.get("format") != FORMAT:
            return None
        dense = backend.load(directory.name, directory / manifest["dense"]["file"], manifest["dense"])
        lexical = BM25Index.load(directory / manifest["lexical"]["file"])
        return Snapshot(dense, lexical)  # the manifest's generation is informational: loads reconcile by id
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("index files in %s are unreadable (%s); rebuilding from the store", directory, exc)
        return None

"""The floor: the same embedder, the same saved dense index, the same BM25 index and fusion over the same corpus,
with nothing else around them: a bare in-process loop, and a minimal ASGI app (no framework, greedy batching,
one thread hop per batch, texts in memory). The project's figures are reported as ratios to these."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from voicerag.retrieval.state import CollectionState
from voicerag.retrieval.worker import FusionParams, convex_fuse

K, CANDIDATES, ALPHA = 10, 50, FusionParams().alpha


class FloorSearch:
    """Uncached hybrid search over one collection's indexes, as a bare function of the query."""

    def __init__(self, embed_sync: Callable[[list[str]], np.ndarray], state: CollectionState):
        self.embed_sync = embed_sync
        self.dense = state.dense
        self.lexical = state.lexical
        self.texts = {i: c.text for i, c in state.chunks.items()}

    def batch(self, queries: list[str]) -> list[list[dict[str, Any]]]:
        vectors = self.embed_sync(queries)
        scores, ids = self.dense.search(vectors, CANDIDATES)
        out = []
        for query, row_scores, row_ids in zip(queries, scores, ids, strict=True):
            dense = [(float(s), int(i)) for s, i in zip(row_scores, row_ids, strict=True) if i >= 0]
            lex_scores, lex_ids = self.lexical.search(query, CANDIDATES)
            lexical = list(zip(lex_scores.tolist(), lex_ids.tolist(), strict=True))
            fused = convex_fuse("bench", dense, lexical, ALPHA)
            out.append([{"chunk_id": h.chunk_id, "score": h.score, "text": self.texts[h.chunk_id]} for h in fused[:K]])
        return out


def floor_app(floor: FloorSearch) -> Callable[..., Any]:
    """A minimal ASGI app: POST /search {"query"} -> {"results"}; greedy batches, one thread hop each."""
    queue: list[tuple[str, asyncio.Future[Any]]] = []
    running = False

    async def drain() -> None:
        nonlocal running
        try:
            while queue:
                batch = queue[:64]
                del queue[:64]
                results = await asyncio.to_thread(floor.batch, [q for q, _ in batch])
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            running = False

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal running
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/readyz":
            payload, status = b'{"status":"ready"}', 200
        else:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            queue.append((json.loads(body)["query"], future))
            if not running:
                running = True
                asyncio.get_running_loop().create_task(drain())
            payload, status = json.dumps({"results": await future}).encode(), 200
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    """``python -m voicerag.bench.floor DATA_DIR PORT``: serve the floor app over the bench collection."""
    import uvicorn

    from voicerag.app import VoiceRAG
    from voicerag.config import Settings

    data_dir, port = sys.argv[1], int(sys.argv[2])

    async def prepare() -> FloorSearch:
        rag = await VoiceRAG.open(Settings(data_dir=data_dir, preload_speech=False))
        state = (await rag.retriever.current(["bench"]))["bench"]
        return FloorSearch(rag.embedder.embed_sync, state)  # type: ignore[arg-type]

    floor = asyncio.run(prepare())
    uvicorn.run(floor_app(floor), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

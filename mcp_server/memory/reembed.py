"""reembed: recompute every memory's vector of a schema with the configured embedder."""

from __future__ import annotations

from collections.abc import Callable

from mcp_server.embedding import Embedder
from mcp_server.store import TenantStore, VectorRewrite

# Memories per batch: one model run (or HTTP request) and one transaction each.
REEMBED_BATCH = 256

Progress = Callable[[int, int], None]


async def reembed(
    store: TenantStore, embedder: Embedder, *, batch_size: int = REEMBED_BATCH, progress: Progress | None = None
) -> int:
    """Rewrite all vectors of `store`'s schema in batches, resizing the column to the embedder's.

    The vector index is dropped first and rebuilt at the end; meanwhile recall still finds
    memories by their words. Calls `progress(done, total)` after each batch; returns `total`.
    An interrupted run leaves the vectors written so far; running it again completes it.
    """
    rewrite = VectorRewrite(store, embedder.dimension, embedder.name)
    total = await rewrite.begin()
    done, last = 0, 0
    if progress:
        progress(done, total)
    while batch := await rewrite.batch_after(last, batch_size):
        vectors = await embedder.embed_documents([text for _, text in batch])
        await rewrite.write([seq for seq, _ in batch], vectors)
        done += len(batch)
        last = batch[-1][0]
        if progress:
            progress(min(done, total), total)
    await rewrite.finish()
    return done

"""Embedders: text to vectors for semantic recall, behind one small protocol.

`local` (default) runs all-MiniLM-L6-v2 in-process; `openai` calls an OpenAI-compatible
endpoint; `none` keeps recall lexical-only. Only `config` is imported from here.
"""

from __future__ import annotations

from mcp_server.config import Settings
from mcp_server.embedding.base import Embedder, Vector


def build_embedder(settings: Settings) -> Embedder | None:
    """The embedder `BULKHEAD_EMBEDDER` names, or None for lexical-only recall. Loads nothing yet."""
    if settings.embedder == "none":
        return None
    if settings.embedder == "openai":
        from mcp_server.embedding.openai_compatible import OpenAICompatibleEmbedder

        assert settings.embedding_url and settings.embedding_model and settings.embedding_dimensions
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAICompatibleEmbedder(
            url=settings.embedding_url,
            model=settings.embedding_model,
            dimensions=settings.embedding_dimensions,
            api_key=key,
            timeout=settings.embedding_timeout,
        )
    from mcp_server.embedding.local import LocalEmbedder

    return LocalEmbedder(threads=settings.embedding_threads)


__all__ = ["Embedder", "Vector", "build_embedder"]

"""An embedder that calls any OpenAI-compatible `/v1/embeddings` endpoint over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx2
import numpy as np

from mcp_server.embedding.base import QueryCache, Vector, normalise
from mcp_server.errors import InvalidInput, Misconfigured, Unavailable

logger = logging.getLogger(__name__)

# Inputs per request: well under every known server's limit (OpenAI takes 2,048), and small
# enough that one slow request does not hold a large retain hostage to the timeout.
REQUEST_BATCH = 128


def endpoint(url: str) -> str:
    """The embeddings URL: `url` itself if it names `/embeddings`, else `url` + `/embeddings`."""
    url = url.rstrip("/")
    return url if url.endswith("/embeddings") else f"{url}/embeddings"


class OpenAICompatibleEmbedder:
    """POSTs `{"model", "input", "dimensions"}` and reads `data[i].embedding` back, in index order."""

    def __init__(
        self,
        *,
        url: str,
        model: str,
        dimensions: int,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = endpoint(url)
        self.model = model
        self._dimension = dimensions
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(timeout), transport=transport, follow_redirects=False
        )
        self._cache = QueryCache()

    @property
    def name(self) -> str:
        return f"openai-compatible {self.model}"

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), REQUEST_BATCH):
            vectors.extend(await self._request(list(texts[start : start + REQUEST_BATCH])))
        return vectors

    async def embed_query(self, text: str, *, namespace: str = "") -> Vector:
        async def compute(query: str) -> Vector:
            return (await self._request([query]))[0]

        return await self._cache.get(namespace, text, compute)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(self, texts: list[str]) -> list[Vector]:
        body = {"model": self.model, "input": texts, "dimensions": self._dimension, "encoding_format": "float"}
        try:
            response = await self._client.post(self.url, json=body)
        except httpx2.TimeoutException:
            raise Unavailable(
                f"the embedding service did not answer within {self.timeout:g} s; nothing was changed, retry later."
            ) from None
        except httpx2.HTTPError as exc:
            logger.warning("embedding request failed: %s", type(exc).__name__)
            raise Unavailable("the embedding service cannot be reached; nothing was changed, retry later.") from None
        if response.status_code in (401, 403):
            raise Misconfigured(
                f"the embedding service refused the configured credentials (HTTP {response.status_code}); "
                "the server's operator must fix BULKHEAD_EMBEDDING_API_KEY."
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise Unavailable(
                f"the embedding service is busy or failing (HTTP {response.status_code}); "
                "nothing was changed, retry later."
            )
        if response.status_code != 200:
            logger.warning("embedding service answered HTTP %s: %.300s", response.status_code, response.text)
            raise InvalidInput(
                f"the embedding service rejected the request (HTTP {response.status_code}); "
                "the text may be too long for its model, so try shorter content."
            )
        return self._vectors(response, len(texts))

    def _vectors(self, response: httpx2.Response, expected: int) -> list[Vector]:
        try:
            payload: Any = response.json()
            items = sorted(payload["data"], key=lambda item: item["index"])
            matrix = np.array([item["embedding"] for item in items], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            raise Unavailable("the embedding service sent an answer Bulkhead cannot read; retry later.") from None
        if matrix.ndim != 2 or matrix.shape[0] != expected:
            raise Unavailable("the embedding service sent the wrong number of vectors; retry later.")
        if matrix.shape[1] != self._dimension:
            raise Misconfigured(
                f"the embedding service returned {matrix.shape[1]}-dimension vectors but the server is "
                f"configured for {self._dimension}; the operator must fix BULKHEAD_EMBEDDING_DIMENSIONS."
            )
        return normalise(matrix)

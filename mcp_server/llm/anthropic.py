"""Anthropic's Messages API, spoken over plain HTTP (no vendor SDK)."""

from __future__ import annotations

from typing import Any

import httpx2

from mcp_server.llm.base import Prompt
from mcp_server.llm.endpoint import EndpointSynthesiser, Unreadable

API_VERSION = "2023-06-01"
DEFAULT_URL = "https://api.anthropic.com/v1"


def messages_url(url: str) -> str:
    """The Messages URL: `url` itself if it names `/messages`, else the base (`.../v1`) + it."""
    url = url.rstrip("/")
    return url if url.endswith("/messages") else f"{url}/messages"


class AnthropicSynthesiser(EndpointSynthesiser):
    """POSTs `{"model", "system", "messages", "max_tokens"}`; joins the reply's text blocks.

    The Messages API takes its key in the `x-api-key` header, and only there.
    """

    def __init__(
        self,
        *,
        url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        max_tokens: int,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        super().__init__(
            url=messages_url(url),
            model=model,
            headers=headers,
            timeout=timeout,
            max_tokens=max_tokens,
            transport=transport,
        )

    @property
    def name(self) -> str:
        return f"the Anthropic endpoint ({self.model})"

    def body(self, prompt: Prompt, max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "system": prompt.system,
            "messages": [{"role": "user", "content": prompt.user}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }

    def answer_of(self, payload: Any) -> str:
        blocks = [block["text"] for block in payload["content"] if block.get("type") == "text"]
        if not blocks or not all(isinstance(text, str) for text in blocks):
            raise Unreadable
        return "".join(blocks)

"""Any OpenAI-compatible chat-completions endpoint: OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio."""

from __future__ import annotations

from typing import Any

import httpx2

from mcp_server.llm.base import Prompt
from mcp_server.llm.endpoint import EndpointSynthesiser, Unreadable


def chat_completions_url(url: str) -> str:
    """The chat-completions URL: `url` itself if it names `/chat/completions`, else the base + it."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


class OpenAICompatibleSynthesiser(EndpointSynthesiser):
    """POSTs `{"model", "messages", "max_tokens", "temperature": 0}`; reads `choices[0].message.content`.

    The key, when there is one, travels as `Authorization: Bearer ...` and nowhere else.
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
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(
            url=chat_completions_url(url),
            model=model,
            headers=headers,
            timeout=timeout,
            max_tokens=max_tokens,
            transport=transport,
        )

    @property
    def name(self) -> str:
        return f"the OpenAI-compatible endpoint ({self.model})"

    def body(self, prompt: Prompt, max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": False,
        }

    def answer_of(self, payload: Any) -> str:
        content = payload["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise Unreadable
        return content

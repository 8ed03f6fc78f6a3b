"""Synthesisers: turn a question and its evidence into an answer that cites the evidence.

`openai` (any OpenAI-compatible chat-completions endpoint) and `anthropic` (the Messages API)
are configured by `BULKHEAD_LLM_*`; `extractive` needs nothing and is always there. The
client's own model (MCP sampling) is one too, but the server builds it, since only the server
speaks MCP. Only `config` and `errors` are imported from here.
"""

from __future__ import annotations

from mcp_server.config import Settings
from mcp_server.llm.base import Evidence, Mode, Prompt, Synthesiser
from mcp_server.llm.endpoint import EndpointSynthesiser
from mcp_server.llm.extractive import ExtractiveSynthesiser


def build_synthesiser(settings: Settings) -> EndpointSynthesiser | None:
    """The model endpoint `BULKHEAD_LLM_*` configures, or None when none is. Opens no connection yet."""
    provider = settings.llm_kind
    if provider is None:
        return None
    assert settings.llm_model
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    timeout, max_tokens = settings.llm_timeout, settings.llm_max_tokens
    if provider == "anthropic":
        from mcp_server.llm.anthropic import DEFAULT_URL, AnthropicSynthesiser

        return AnthropicSynthesiser(
            url=settings.llm_url or DEFAULT_URL,
            model=settings.llm_model,
            api_key=key,
            timeout=timeout,
            max_tokens=max_tokens,
        )
    from mcp_server.llm.openai_compatible import OpenAICompatibleSynthesiser

    assert settings.llm_url
    return OpenAICompatibleSynthesiser(
        url=settings.llm_url, model=settings.llm_model, api_key=key, timeout=timeout, max_tokens=max_tokens
    )


__all__ = [
    "EndpointSynthesiser",
    "Evidence",
    "ExtractiveSynthesiser",
    "Mode",
    "Prompt",
    "Synthesiser",
    "build_synthesiser",
]

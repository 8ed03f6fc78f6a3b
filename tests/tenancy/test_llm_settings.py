"""The reflect model settings: which endpoint they select, and one line for each that cannot work."""

from __future__ import annotations

import pytest
from helpers import clear_bulkhead_env

from mcp_server.config import load_settings
from mcp_server.errors import Misconfigured
from mcp_server.llm import build_synthesiser
from mcp_server.llm.anthropic import AnthropicSynthesiser
from mcp_server.llm.openai_compatible import OpenAICompatibleSynthesiser


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_bulkhead_env(monkeypatch)


@pytest.mark.anyio
async def test_the_url_alone_selects_openai_and_the_provider_selects_anthropic() -> None:
    assert build_synthesiser(load_settings(_env_file=None)) is None
    openai = build_synthesiser(load_settings(_env_file=None, llm_url="http://127.0.0.1:8080/v1", llm_model="m"))
    assert isinstance(openai, OpenAICompatibleSynthesiser) and openai.url == "http://127.0.0.1:8080/v1/chat/completions"
    full = build_synthesiser(
        load_settings(_env_file=None, llm_url="http://h/v1/chat/completions/", llm_model="m", llm_timeout=5)
    )
    assert isinstance(full, OpenAICompatibleSynthesiser) and full.url == "http://h/v1/chat/completions"
    assert full.timeout == 5
    anthropic = build_synthesiser(load_settings(_env_file=None, llm_provider="anthropic", llm_model="m"))
    assert isinstance(anthropic, AnthropicSynthesiser) and anthropic.url.endswith("/v1/messages")
    for synthesiser in (openai, full, anthropic):
        await synthesiser.aclose()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"llm_url": "http://h/v1"}, "BULKHEAD_LLM_MODEL: required"),
        ({"llm_provider": "openai", "llm_model": "m"}, "BULKHEAD_LLM_URL: required"),
        ({"llm_url": "h/v1", "llm_model": "m"}, "BULKHEAD_LLM_URL: must start with http"),
        ({"llm_provider": "other"}, "BULKHEAD_LLM_PROVIDER"),
        ({"llm_timeout": "0"}, "BULKHEAD_LLM_TIMEOUT"),
        ({"reflect_sampling": "always"}, "BULKHEAD_REFLECT_SAMPLING"),
        ({"request_state_keys": "short-secret,"}, "BULKHEAD_REQUEST_STATE_KEYS: each key must be at least 32"),
    ],
)
def test_settings_that_cannot_work_are_one_line_naming_the_variable(settings: dict[str, str], message: str) -> None:
    with pytest.raises(Misconfigured) as refused:
        load_settings(_env_file=None, **settings)
    assert str(refused.value).startswith(message)
    assert "short-secret" not in str(refused.value)

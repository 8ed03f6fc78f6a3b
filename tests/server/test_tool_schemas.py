"""The tools as a model reads them: bounds published once, no pydantic noise, a small context."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_server.memory import arguments
from mcp_server.server.app import BulkheadServer
from mcp_server.server.binding import FixedTenant
from mcp_server.server.schemas import context_tokens
from mcp_server.server.tools import DEFAULT_BANK, TOOLS, instructions
from mcp_server.tenancy import Tenant

pytestmark = pytest.mark.anyio


async def listed() -> dict[str, Any]:
    server = BulkheadServer(None, FixedTenant(Tenant("public", "public")))  # type: ignore[arg-type]
    return {tool.name: tool for tool in await server.list_tools()}


async def test_bounds_are_published_in_the_input_schemas() -> None:
    tools = await listed()
    recall = tools["recall"].input_schema["properties"]
    assert recall["bank"]["pattern"] == arguments.BANK_PATTERN and recall["bank"]["default"] == DEFAULT_BANK
    assert (recall["max_results"]["minimum"], recall["max_results"]["maximum"]) == (1, arguments.MAX_RESULTS)
    assert (recall["max_tokens"]["minimum"], recall["max_tokens"]["maximum"]) == (1, arguments.MAX_TOKENS)
    assert recall["query"]["maxLength"] == arguments.MAX_QUERY_CHARS
    assert recall["since"] == {"format": "date-time", "type": "string"} == recall["until"]
    assert recall["tags"]["maxItems"] == arguments.MAX_TAGS
    assert recall["tags"]["items"] == {"maxLength": arguments.MAX_TAG_CHARS, "minLength": 1, "type": "string"}
    retain = tools["retain"].input_schema
    assert retain["required"] == ["content"]
    assert retain["properties"]["context"]["maxLength"] == arguments.MAX_CONTEXT_CHARS
    assert retain["properties"]["document_id"]["maxLength"] == arguments.MAX_DOCUMENT_ID_CHARS
    assert retain["properties"]["occurred_at"]["format"] == "date-time"
    forget = tools["forget"].input_schema
    assert forget["required"] == ["bank"]
    assert forget["properties"]["memory_ids"]["maxItems"] == arguments.MAX_MEMORY_IDS
    assert forget["properties"]["memory_ids"]["items"] == {"format": "uuid", "type": "string"}
    # What a model reads for recall's query is about finding, not storing.
    assert "remember" not in recall["query"]["description"].lower()


async def test_schemas_carry_no_pydantic_noise_and_fit_a_small_context() -> None:
    tools = await listed()
    text = json.dumps([tool.input_schema for tool in tools.values()])
    assert '"title"' not in text and '"anyOf"' not in text and '"default": null' not in text
    total = sum(context_tokens(t.name, t.description or "", t.input_schema) for t in tools.values())
    print(f"five tools: {total:.1f} tokens of context")
    assert total <= 800


def test_the_tool_list_is_written_once() -> None:
    names = [tool.name for tool in TOOLS]
    assert names == ["retain", "recall", "reflect", "forget", "list_banks"]
    text = instructions()
    assert all(f"{name} " in text for name in names)
    assert {tool.name for tool in TOOLS if tool.default_bank == DEFAULT_BANK} == {"retain", "recall", "reflect"}
    assert {tool.name: tool.annotations.read_only_hint for tool in TOOLS} == {
        "retain": False,
        "recall": True,
        "reflect": True,
        "forget": False,
        "list_banks": True,
    }
    assert [tool.name for tool in TOOLS if tool.annotations.destructive_hint] == ["forget"]


def test_every_rule_names_its_argument() -> None:
    for name, rule in arguments.RULES.items():
        assert rule.startswith(name + " ") and rule.endswith(".") and "\n" not in rule

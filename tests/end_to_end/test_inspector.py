"""The MCP Inspector's CLI (npm) against `bulkhead serve`, over stdio and over HTTP with a bearer key."""

from __future__ import annotations

import shutil

import pytest
from helpers import server_env, unique
from helpers.http import http_server
from helpers.inspector import BEARER_PRELOAD, BULKHEAD, inspector, output

TOOLS = {"retain", "recall", "reflect", "forget", "list_banks"}

pytestmark = pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")


def round_trip(env: dict[str, str], target: list[str]) -> None:
    """tools/list shows the five tools; retain then recall finds what was retained."""
    listed = output(inspector(env, target, "--method", "tools/list"))
    assert {tool["name"] for tool in listed["tools"]} == TOOLS
    bank, fact = unique("inspector"), f"The Inspector saw a {unique('kettle')} kettle."
    call = ["--method", "tools/call", "--tool-name"]
    retained = output(inspector(env, target, *call, "retain", "--tool-arg", f"content={fact}", f"bank={bank}"))
    assert retained["isError"] is False and retained["structuredContent"]["bank"] == bank
    recalled = output(inspector(env, target, *call, "recall", "--tool-arg", "query=kettle", f"bank={bank}"))
    assert recalled["isError"] is False
    assert [m["text"] for m in recalled["structuredContent"]["memories"]] == [fact]
    assert recalled["structuredContent"]["memories"][0]["id"] == retained["structuredContent"]["memory_ids"][0]


def test_inspector_over_stdio(pg_url: str) -> None:
    key = unique("key")
    env = server_env(pg_url, tenant_key_map=f"{key}:{unique('tenant')}", api_key=key)
    round_trip(env, [BULKHEAD, "serve"])


def test_inspector_over_http_with_a_bearer_header(pg_url: str) -> None:
    key = unique("key")
    with http_server(server_env(pg_url, tenant_key_map=f"{key}:{unique('tenant')}")) as server:
        plain = server_env(None)
        refused = inspector(plain, [f"{server.url}/mcp"], "--method", "tools/list")
        assert refused.returncode != 0 and "invalid_token" in refused.stderr
        with_key = {
            **plain,
            "NODE_OPTIONS": f"--require {BEARER_PRELOAD}",
            "MCP_BEARER_TOKEN": key,
            "MCP_BEARER_ORIGIN": server.url,
        }
        round_trip(with_key, [f"{server.url}/mcp"])
        assert server.stop() == 0
        assert key not in server.log()

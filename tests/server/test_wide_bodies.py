"""Bodies too large or too wide for any tool are refused before anything parses them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest
from helpers import call, server_env, unique
from helpers.http import HttpServer, http_server, mcp_client

from mcp_server.config import MIB
from mcp_server.server.http_guards import MAX_JSON_VALUES, body_limit, too_wide

pytestmark = pytest.mark.anyio

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def retain_body(**arguments: object) -> bytes:
    message = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "retain", "arguments": arguments}}
    return json.dumps(message).encode()


def test_width_is_told_without_parsing_and_commas_in_strings_do_not_count() -> None:
    assert not too_wide(retain_body(content="a, b, " * 200_000))
    assert not too_wide(retain_body(content="x", memory_ids=["3f2b8c1e-5d4a-4b7e-9c0f-1a2b3c4d5e6f"] * 1000))
    assert too_wide(retain_body(content="x", tags=["t"] * MAX_JSON_VALUES))
    assert too_wide(retain_body(content="x", tags=[1] * MAX_JSON_VALUES))
    assert too_wide(retain_body(content='"quoted", \\"escaped\\"', tags=["t"] * (MAX_JSON_VALUES + 5)))
    assert body_limit(MIB) == 3 * MIB + 256 * 1024


@pytest.fixture(scope="module")
def server(pg_url: str) -> Iterator[HttpServer]:
    with http_server(server_env(pg_url, default_schema=unique("wide"))) as running:
        yield running


async def test_a_body_with_a_million_tags_is_refused_and_the_server_answers_on(server: HttpServer) -> None:
    async with mcp_client(server.url, None) as client, httpx2.AsyncClient(timeout=60) as http:
        for tags, refusal in (
            (750_000, f"the request body is larger than {body_limit(MIB)} bytes; send less."),
            (
                MAX_JSON_VALUES + 1,
                f"the request holds more than {MAX_JSON_VALUES} JSON values, more than any tool takes.",
            ),
        ):
            body = retain_body(content="x", tags=["t"] * tags)
            refused = await http.post(f"{server.url}/mcp", content=body, headers=ACCEPT)
            assert (refused.status_code, refused.json()["error"]["message"]) == (413, refusal)
        too_large = await http.post(f"{server.url}/mcp", content=b" " * (body_limit(MIB) + 1), headers=ACCEPT)
        assert too_large.status_code == 413 and "larger than" in too_large.json()["error"]["message"]
        # The largest content, escaped as ASCII-only JSON writes it, still goes through.
        largest = "é" * (MIB // 2)
        assert len(json.dumps(largest)) > 2 * MIB
        stored = await call(client, "retain", content=largest, bank="b")
        assert len(stored["memory_ids"]) >= 1
        assert (await call(client, "list_banks"))["banks"][0]["bank"] == "b"

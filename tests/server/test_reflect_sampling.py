"""reflect with the client's own model (MCP sampling): real SDK clients with a sampling callback,
over stdio and HTTP, on the 2025-11-25 handshake and the 2026-07-28 revision, stateful and
stateless; clients without sampling, and clients that refuse."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from helpers import call, server_env, stdio_params, unique
from helpers.http import http_server
from helpers.model_stub import KEY, evidence_in, model_stub, question_in, stub_answer
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client as raw_stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ErrorData,
    InputRequiredResult,
    TextContent,
)

from mcp_server.memory.reflection import SYSTEM

pytestmark = pytest.mark.anyio

FACTS = ["Maria's favourite dessert is tiramisu.", "The office printer is on the third floor."]
QUESTION = "What dessert does Maria like?"


class ClientModel:
    """A sampling callback: answers like the stub model, or refuses while `refusing` is set."""

    def __init__(self, *, refusing: bool = False) -> None:
        self.refusing = refusing
        self.asked: list[CreateMessageRequestParams] = []

    async def __call__(self, context: Any, params: CreateMessageRequestParams) -> CreateMessageResult | ErrorData:
        self.asked.append(params)
        if self.refusing:
            return ErrorData(code=-1, message="The user declined the sampling request.")
        assert isinstance(params.messages[0].content, TextContent)
        text = stub_answer(params.messages[0].content.text)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text=text), model="client-model")


@asynccontextmanager
async def stdio(env: dict[str, str], mode: str, model: ClientModel | None) -> AsyncIterator[Client]:
    async with Client(
        raw_stdio_client(stdio_params(env), errlog=sys.stderr),
        mode=mode,  # type: ignore[arg-type]
        read_timeout_seconds=60,
        sampling_callback=model,
    ) as client:
        yield client


@asynccontextmanager
async def http(url: str, mode: str, model: ClientModel | None) -> AsyncIterator[Client]:
    if mode == "sse":
        async with Client(sse_client(f"{url}/sse"), mode="legacy", sampling_callback=model) as client:
            yield client
        return
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=120)) as transport,
        Client(
            streamable_http_client(f"{url}/mcp", http_client=transport),
            mode=mode,  # type: ignore[arg-type]
            sampling_callback=model,
        ) as client,
    ):
        yield client


async def ask(client: Client, bank: str) -> tuple[list[str], dict[str, Any]]:
    """Retain the facts in `bank` and reflect on the question; the ids retained and the result."""
    ids = [(await call(client, "retain", content=fact, bank=bank))["memory_ids"][0] for fact in FACTS]
    return ids, await call(client, "reflect", query=QUESTION, bank=bank)


def assert_sampled(model: ClientModel, ids: list[str], result: dict[str, Any]) -> None:
    assert result == {
        "answer": "From memory: Maria's favourite dessert is tiramisu. [1]",
        "citations": [ids[0]],
        "mode": "sampling",
        "fallback": None,
    }
    (params,) = model.asked
    assert params.system_prompt == SYSTEM and params.include_context == "none"
    assert isinstance(params.messages[0].content, TextContent)
    user = params.messages[0].content.text
    assert question_in(user) == QUESTION and evidence_in(user)[1] == FACTS[0]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_client_model_answers_on_both_revisions(pg_url: str, mode: str) -> None:
    env = server_env(pg_url, default_schema=unique("sample"), embedder="none")
    model = ClientModel()
    async with stdio(env, mode, model) as client:
        ids, result = await ask(client, unique("bank"))
    assert_sampled(model, ids, result)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_client_without_sampling_gets_an_extractive_answer(pg_url: str, mode: str) -> None:
    env = server_env(pg_url, default_schema=unique("sample"), embedder="none")
    async with stdio(env, mode, None) as client:
        ids, result = await ask(client, unique("bank"))
    assert result["mode"] == "extractive" and result["citations"] == [ids[0]]
    assert result["fallback"] == "no model is configured and the client does not offer sampling"


async def test_a_refusal_the_server_sees_falls_back_and_one_it_cannot_see_ends_the_call_client_side(
    pg_url: str,
) -> None:
    env = server_env(pg_url, default_schema=unique("sample"), embedder="none")
    # 2025-11-25: the refusal is the answer to the server's request, so reflect answers by extraction.
    refusing = ClientModel(refusing=True)
    async with stdio(env, "legacy", refusing) as client:
        ids, result = await ask(client, unique("bank"))
    assert result["mode"] == "extractive" and result["citations"] == [ids[0]]
    assert result["fallback"] == "the client declined the sampling request"
    assert len(refusing.asked) == 1
    # 2026-07-28: the request rides the call's result and the client, refusing, never calls
    # back; the call fails on the client's side, and the server serves the next call as usual.
    refusing = ClientModel(refusing=True)
    async with stdio(env, "auto", refusing) as client:
        bank = unique("bank")
        with pytest.raises(MCPError, match="declined"):
            await ask(client, bank)
        refusing.refusing = False
        again = await call(client, "reflect", query=QUESTION, bank=bank)
    assert again["mode"] == "sampling" and len(refusing.asked) == 2


async def test_a_configured_endpoint_comes_first_and_sampling_can_be_turned_off(pg_url: str) -> None:
    with model_stub() as stub:
        env = server_env(
            pg_url,
            default_schema=unique("sample"),
            embedder="none",
            llm_url=stub.url,
            llm_model="stub",
            llm_api_key=KEY,
        )
        model = ClientModel()
        async with stdio(env, "legacy", model) as client:
            _, result = await ask(client, unique("bank"))
        assert result["mode"] == "llm" and model.asked == [] and len(stub.requests) == 1
    env = server_env(pg_url, default_schema=unique("sample"), embedder="none", reflect_sampling="off")
    for mode in ("legacy", "auto"):
        model = ClientModel()
        async with stdio(env, mode, model) as client:
            _, result = await ask(client, unique("bank"))
        assert result["mode"] == "extractive" and result["fallback"] is None and model.asked == []


async def test_http_client_model_answers_over_streamable_http_and_sse(pg_url: str) -> None:
    env = server_env(pg_url, default_schema=unique("sample"), embedder="none")
    with http_server(env) as server:
        for mode in ("legacy", "auto", "sse"):
            model = ClientModel()
            async with http(server.url, mode, model) as client:
                ids, result = await ask(client, unique("bank"))
            assert_sampled(model, ids, result)


async def test_stateless_http_samples_on_the_newest_revision_only(pg_url: str) -> None:
    env = server_env(pg_url, default_schema=unique("sample"), embedder="none", http_stateless="true")
    with http_server(env) as server:
        model = ClientModel()
        async with http(server.url, "auto", model) as client:
            ids, result = await ask(client, unique("bank"))
        assert_sampled(model, ids, result)
        # A 2025-era stateless connection has no back-channel for the request.
        model = ClientModel()
        async with http(server.url, "legacy", model) as client:
            ids, result = await ask(client, unique("bank"))
        assert result["mode"] == "extractive" and result["citations"] == [ids[0]] and model.asked == []
        assert result["fallback"] == "a stateless connection cannot carry sampling"


async def test_replicas_sharing_the_sealing_keys_resume_each_others_rounds(pg_url: str) -> None:
    """2026-07-28, stateless, behind a load balancer: the round that asks the client's model and the
    round that brings its answer may reach different processes; shared keys let either resume."""
    keys = ",".join(unique("k") * 3 for _ in range(2))
    env = server_env(
        pg_url, default_schema=unique("sample"), embedder="none", http_stateless="true", request_state_keys=keys
    )
    unshared = {k: v for k, v in env.items() if k != "BULKHEAD_REQUEST_STATE_KEYS"}
    bank = unique("bank")
    with http_server(env) as first, http_server(env) as second, http_server(unshared) as stranger:
        asker, resumer = ClientModel(), ClientModel()
        async with (
            http(first.url, "auto", asker) as a,
            http(second.url, "auto", resumer) as b,
            http(stranger.url, "auto", ClientModel()) as c,
        ):
            ids = [(await call(a, "retain", content=fact, bank=bank))["memory_ids"][0] for fact in FACTS]
            arguments = {"query": QUESTION, "bank": bank}
            asked = await a.session.call_tool("reflect", arguments, allow_input_required=True)
            assert isinstance(asked, InputRequiredResult) and asked.input_requests
            ((key, request),) = asked.input_requests.items()
            assert isinstance(request, CreateMessageRequest)
            answer = await asker(None, request.params)
            assert isinstance(answer, CreateMessageResult)
            result = await b.call_tool(
                "reflect", arguments, input_responses={key: answer}, request_state=asked.request_state
            )
            # A process with a key of its own cannot open the state, so it refuses it.
            with pytest.raises(MCPError, match="requestState"):
                await c.call_tool(
                    "reflect", arguments, input_responses={key: answer}, request_state=asked.request_state
                )
    assert result.structured_content == {
        "answer": "From memory: Maria's favourite dessert is tiramisu. [1]",
        "citations": [ids[0]],
        "mode": "sampling",
        "fallback": None,
    }
    # The second process took the first one's question and the client's answer as they were.
    assert len(asker.asked) == 1 and resumer.asked == []

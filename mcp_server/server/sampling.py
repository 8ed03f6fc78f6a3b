"""The client's own model as reflect's synthesiser, through MCP sampling.

Sampling is used only when no model endpoint is configured, `BULKHEAD_REFLECT_SAMPLING` is
`auto`, the client declared the `sampling` capability, and the connection can carry the request:

- 2025-era connections (after the `initialize` handshake) send `sampling/createMessage` in the
  middle of the call, over the back-channel: stdio, SSE, stateful streamable HTTP. Stateless
  HTTP has no back-channel, so it answers extractively. A client that refuses answers with an
  error the server sees, so reflect falls back to extraction.
- 2026-07-28 connections carry the request in the call's result (`InputRequiredResult`) and the
  client retries the call with the answer, on any transport, stateful or not. The SDK re-runs
  the resolvers below on each round, so the evidence is gathered again and must render to the
  same prompt (it does for the same bank state and day; otherwise the client is asked again).
  A client that refuses ends the call on its own side: the server never hears of it.

Only this module and `tools` know that sampling exists; `memory` sees one more `Synthesiser`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve, Sample
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    SamplingMessage,
    TextContent,
)
from mcp_types.version import is_version_at_least
from pydantic import ValidationError

from mcp_server.errors import Unavailable
from mcp_server.llm import Mode, Prompt, Synthesiser
from mcp_server.memory import reflection
from mcp_server.runtime import Runtime
from mcp_server.server.calls import this_call

logger = logging.getLogger(__name__)

IN_RESULT_VERSION = "2026-07-28"
"""The first revision that carries sampling inside the call's result rather than mid-call."""


@dataclass(frozen=True, slots=True)
class SamplingPlan:
    """How this call may reach the client's model, or why it may not."""

    in_result: bool = False
    """2026-07-28: ask through the call's result (a resolver)."""
    back_channel: bool = False
    """2025-era: ask mid-call over the connection."""
    unavailable: str | None = None
    """Why sampling cannot be used, when it could have been the answer."""


def plan_sampling(runtime: Runtime, ctx: Context[Any, Any]) -> SamplingPlan:
    """Whether, and how, this call may ask the client's model."""
    if runtime.synthesiser is not None or runtime.settings.reflect_sampling == "off":
        return SamplingPlan()
    capabilities = ctx.client_capabilities
    declared = capabilities is not None and capabilities.sampling is not None
    absent = SamplingPlan(unavailable="no model is configured and the client does not offer sampling")
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, IN_RESULT_VERSION):
        return SamplingPlan(in_result=True) if declared else absent
    if not ctx.session.can_send_request:
        # Stateless HTTP: no back-channel, and no handshake the capabilities could be read from.
        return SamplingPlan(unavailable="a stateless connection cannot carry sampling")
    return SamplingPlan(back_channel=True) if declared else absent


def sampling_params(prompt: Prompt, runtime: Runtime) -> CreateMessageRequestParams:
    """The `sampling/createMessage` request for `prompt`: the same for the same prompt."""
    return CreateMessageRequestParams(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt.user))],
        system_prompt=prompt.system,
        max_tokens=min(prompt.max_tokens, runtime.settings.llm_max_tokens),
        temperature=0,
        include_context="none",
    )


def text_of(result: CreateMessageResult) -> str:
    """The sampled answer's text; `Unavailable` when it has none."""
    content = result.content
    if not isinstance(content, TextContent) or not content.text.strip():
        raise Unavailable("the client's model sent no text")
    return content.text


class BackChannelSampling:
    """Asks the client's model mid-call (2025-era connections), within `BULKHEAD_LLM_TIMEOUT`."""

    def __init__(self, ctx: Context[Any, Any], runtime: Runtime) -> None:
        self._ctx = ctx
        self._runtime = runtime

    @property
    def mode(self) -> Mode:
        return "sampling"

    async def synthesise(self, prompt: Prompt) -> str:
        timeout = self._runtime.settings.llm_timeout
        request = CreateMessageRequest(params=sampling_params(prompt, self._runtime))
        try:
            with anyio.fail_after(timeout):
                result = await self._ctx.session.send_request(
                    request,
                    CreateMessageResult,
                    metadata=ServerMessageMetadata(related_request_id=self._ctx.request_id),
                )
        except TimeoutError:
            raise Unavailable(f"the client's model did not answer within {timeout:g} s") from None
        except NoBackChannelError:
            raise Unavailable("the client offers sampling but this connection cannot carry it") from None
        except MCPError:
            raise Unavailable("the client declined the sampling request") from None
        except ValidationError:
            raise Unavailable("the client's model sent an answer that could not be read") from None
        return text_of(result)

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class SampledAnswer:
    """The client's model's answer, already received through the call's result (2026-07-28)."""

    result: CreateMessageResult

    @property
    def mode(self) -> Mode:
        return "sampling"

    async def synthesise(self, prompt: Prompt) -> str:
        return text_of(self.result)

    async def aclose(self) -> None:
        return None


# -- resolvers: what the reflect tool's body receives besides its arguments --------------------


async def gathered_evidence(query: str, bank: str) -> reflection.Gathered:
    """The evidence for this call (re-gathered on each round of a 2026-07-28 call)."""
    call = this_call()
    return await reflection.gather(call.store, query=query, bank=bank, embedder=call.runtime.embedder)


async def ask_client_model(
    gathered: Annotated[reflection.Gathered, Resolve(gathered_evidence)], max_tokens: int, ctx: Context[Any, Any]
) -> Sample | None:
    """On a 2026-07-28 call that may sample: the request for the client's model; else None.

    None whenever the client did not declare sampling, so the SDK never fails the call for a
    missing capability.
    """
    runtime = this_call().runtime
    if not gathered.memories or not plan_sampling(runtime, ctx).in_result:
        return None
    params = sampling_params(reflection.prompt(gathered, max_tokens=max_tokens), runtime)
    return Sample(
        params.messages,
        max_tokens=params.max_tokens,
        system_prompt=params.system_prompt,
        temperature=params.temperature,
        include_context=params.include_context,
    )


def synthesisers_for(
    runtime: Runtime, ctx: Context[Any, Any], sampled: CreateMessageResult | None
) -> tuple[list[Synthesiser], str | None]:
    """The synthesisers to try for this call, best first, and why sampling is not among them."""
    if runtime.synthesiser is not None:
        return [runtime.synthesiser], None
    plan = plan_sampling(runtime, ctx)
    if plan.in_result and sampled is not None:
        return [SampledAnswer(sampled)], None
    if plan.back_channel:
        return [BackChannelSampling(ctx, runtime)], None
    return [], plan.unavailable

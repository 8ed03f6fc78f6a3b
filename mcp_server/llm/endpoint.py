"""A model behind an HTTP API: one POST per answer, bounded in time, retried once if it is busy.

What differs between APIs (the URL, the headers, the body, where the text is in the reply) is
each subclass's; the time bound, the retry and turning every failure into one short
`Unavailable` reason are here. Nothing logged names the key, the prompt or the answer.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from typing import Any

import anyio
import httpx2

from mcp_server.errors import Unavailable
from mcp_server.llm.base import Mode, Prompt

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# How long to wait before the one retry, unless the endpoint asks for longer (Retry-After) and
# the time bound leaves room for it.
RETRY_PAUSE = 0.5


class Unreadable(Exception):
    """The endpoint answered 200 with a body that holds no answer."""


class EndpointSynthesiser(ABC):
    """A synthesiser that POSTs the prompt to a model endpoint."""

    def __init__(
        self,
        *,
        url: str,
        model: str,
        headers: dict[str, str],
        timeout: float,
        max_tokens: int,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._client = httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(timeout), transport=transport, follow_redirects=False
        )

    @property
    def mode(self) -> Mode:
        return "llm"

    @property
    @abstractmethod
    def name(self) -> str:
        """What the operator's log calls this endpoint (never the key)."""

    @abstractmethod
    def body(self, prompt: Prompt, max_tokens: int) -> dict[str, Any]:
        """The request body for `prompt`."""

    @abstractmethod
    def answer_of(self, payload: Any) -> str:
        """The answer's text in a 200 reply; raises `Unreadable` (or KeyError, TypeError...) if there is none."""

    async def synthesise(self, prompt: Prompt) -> str:
        """POST the prompt; the whole exchange, the retry included, ends within `timeout` seconds."""
        body = self.body(prompt, min(prompt.max_tokens, self.max_tokens))
        try:
            with anyio.fail_after(self.timeout):
                return await self._exchange(body)
        except TimeoutError:
            logger.warning("%s did not answer within %g s", self.name, self.timeout)
            raise Unavailable(f"the model endpoint did not answer within {self.timeout:g} s") from None

    async def _exchange(self, body: dict[str, Any]) -> str:
        started = anyio.current_time()
        for attempt in (1, 2):
            try:
                response = await self._client.post(self.url, json=body)
            except httpx2.TimeoutException:
                raise TimeoutError from None
            except httpx2.HTTPError as exc:
                logger.warning("%s cannot be reached: %s", self.name, type(exc).__name__)
                reason = "the model endpoint cannot be reached"
                if attempt == 1 and await self._pause(started, None):
                    continue
                raise Unavailable(reason) from None
            if response.status_code == 200:
                return self._read(response)
            logger.warning("%s answered HTTP %s", self.name, response.status_code)
            if response.status_code in RETRY_STATUSES:
                if attempt == 1 and await self._pause(started, response.headers.get("retry-after")):
                    continue
                busy = "is rate-limited" if response.status_code == 429 else "failed"
                raise Unavailable(f"the model endpoint {busy} (HTTP {response.status_code})")
            if response.status_code in (401, 403):
                raise Unavailable(f"the model endpoint refused the configured key (HTTP {response.status_code})")
            raise Unavailable(f"the model endpoint rejected the request (HTTP {response.status_code})")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pause(self, started: float, retry_after: str | None) -> bool:
        """Wait before the retry; False when the time bound leaves no room for one."""
        pause = RETRY_PAUSE
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                pause = max(pause, float(retry_after))
        # The retry needs the pause plus time for an answer.
        if anyio.current_time() - started + 2 * pause >= self.timeout:
            return False
        await anyio.sleep(pause)
        return True

    def _read(self, response: httpx2.Response) -> str:
        try:
            text = self.answer_of(response.json())
        except (Unreadable, ValueError, KeyError, IndexError, TypeError):
            logger.warning("%s sent a reply with no readable answer", self.name)
            raise Unavailable("the model endpoint sent a reply with no readable answer") from None
        if not isinstance(text, str) or not text.strip():
            logger.warning("%s sent an empty answer", self.name)
            raise Unavailable("the model endpoint sent an empty answer")
        return text

    async def aclose(self) -> None:
        await self._client.aclose()

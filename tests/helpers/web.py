"""Helpers for dashboard tests: signing in over plain HTTP, reading a page's CSRF token, and
filling tenants through a real MCP client."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio
import httpx2

from helpers import call
from helpers.http import mcp_client

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
T = TypeVar("T")


def run_apart(work: Callable[[], Awaitable[T]]) -> T:
    """Run async `work` to completion on a thread of its own: Playwright's sync API keeps an
    event loop running on the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, work).result()


def dashboard(url: str) -> httpx2.Client:
    """An HTTP client for the dashboard at `url` (the server's base URL) that keeps cookies."""
    return httpx2.Client(base_url=f"{url}/ui", follow_redirects=False, timeout=60)


def sign_in(client: httpx2.Client, key: str) -> httpx2.Response:
    """Post `key` to the sign-in form as a same-origin browser would."""
    return client.post("/sign-in", data={"key": key}, headers=SAME_ORIGIN)


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(page)
    assert found, page
    return found.group(1)


def retain_all(url: str, key: str, bank: str, items: list[dict[str, Any]]) -> list[str]:
    """Retain each item (retain's arguments) through a real MCP client; the memory ids, in order."""

    async def run() -> list[str]:
        ids: list[str] = []
        async with mcp_client(url, key) as client:
            for item in items:
                ids += (await call(client, "retain", bank=bank, **item))["memory_ids"]
        return ids

    return run_apart(run)


def recall_ids(url: str, key: str, bank: str, query: str) -> list[str]:
    """The ids `recall` returns through a real MCP client."""

    async def run() -> list[str]:
        async with mcp_client(url, key) as client:
            found = await call(client, "recall", bank=bank, query=query, max_results=50)
        return [m["id"] for m in found["memories"]]

    return run_apart(run)

"""What a keyed HTTP server tells an OAuth-capable client: nothing about OAuth.

Keys are issued by the operator, so the server publishes no protected-resource metadata and no
authorization server; its 401 is a plain `Bearer` challenge. The MCP SDK's own OAuth client,
pointed at it with no key, ends its discovery on this server's 404s without ever sending its user
to an authorization page, and the same SDK with the key in a header is served.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2
import pytest
from helpers import server_env, unique
from helpers.http import ACCEPT, INITIALIZE, HttpServer, http_server, mcp_client
from mcp import Client
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

pytestmark = pytest.mark.anyio

DISCOVERY_PATHS = [
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-protected-resource/sse",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
]


class NoStoredTokens:
    """The SDK's `TokenStorage`, empty: a host meeting this server for the first time."""

    async def get_tokens(self) -> OAuthToken | None:
        return None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        raise AssertionError("no token can be issued: there is no authorization server")

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        raise AssertionError("no client can be registered: there is no authorization server")


@pytest.fixture(scope="module")
def keyed(pg_url: str) -> Iterator[tuple[HttpServer, str]]:
    key = unique("key")
    with http_server(server_env(pg_url, tenant_key_map=f"{key}:{unique('tenant')}")) as server:
        yield server, key
        assert server.stop() == 0, server.log()


async def test_the_401_is_a_plain_bearer_challenge_and_no_oauth_metadata_exists(
    keyed: tuple[HttpServer, str],
) -> None:
    server, _ = keyed
    async with httpx2.AsyncClient() as http:
        refusals = [
            await http.post(f"{server.url}/mcp", json=INITIALIZE, headers=ACCEPT),
            await http.get(f"{server.url}/sse"),
        ]
        discovery = {path: await http.get(server.url + path) for path in DISCOVERY_PATHS}
    for reply in refusals:
        assert reply.status_code == 401
        challenge = reply.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert "resource_metadata" not in challenge
    assert {path: reply.status_code for path, reply in discovery.items()} == dict.fromkeys(DISCOVERY_PATHS, 404)


async def test_the_sdk_oauth_client_stops_at_discovery_and_the_header_client_is_served(
    keyed: tuple[HttpServer, str],
) -> None:
    server, key = keyed
    redirects: list[str] = []
    seen: list[httpx2.Request] = []

    async def redirect(url: str) -> None:
        redirects.append(url)

    async def record(request: httpx2.Request) -> None:
        seen.append(request)

    oauth = OAuthClientProvider(
        server_url=f"{server.url}/mcp",
        client_metadata=OAuthClientMetadata(redirect_uris=[AnyUrl("http://127.0.0.1:1/callback")]),
        storage=NoStoredTokens(),
        redirect_handler=redirect,
    )
    with pytest.raises(BaseException) as failure:
        async with (
            httpx2.AsyncClient(auth=oauth, event_hooks={"request": [record]}) as http,
            Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode="legacy"),
        ):
            pass
    assert failure.group_contains(OAuthFlowError) if isinstance(failure.value, BaseExceptionGroup) else True
    assert redirects == [], "the client was sent to an authorization page that cannot exist"
    origin = urlsplit(server.url).netloc
    assert seen and all(request.url.netloc.decode() == origin for request in seen)
    assert not any(request.url.path in ("/authorize", "/token") for request in seen)

    async with mcp_client(server.url, key) as client:
        assert not (await client.call_tool("list_banks", {})).is_error

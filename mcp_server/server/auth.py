"""Bearer keys over HTTP, checked through the MCP SDK's own auth machinery.

`KeyVerifier` is the SDK `TokenVerifier`: it turns a key into a `TenantAccessToken` carrying the
tenant, or into nothing. The SDK then answers every request without a valid key with the same 401
(and `WWW-Authenticate`), and refuses any request on a session whose key differs from the one
that opened it, because it compares the token's principal (`client_id`, issuer, subject).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl, ConfigDict

from mcp_server.tenancy import Tenant, TenantDirectory, digest_key

ISSUER_CLAIM = "bulkhead"


class TenantAccessToken(AccessToken):
    """A verified key: which key it was (as an opaque id, never the key) and its tenant."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    tenant: Tenant


class KeyVerifier:
    """Resolves bearer keys through the tenant directory; never logs, stores or echoes a key."""

    def __init__(self, directory: TenantDirectory) -> None:
        self._directory = directory
        # Key ids are keyed by a secret of this process, so an id says nothing about its key.
        self._id_secret = os.urandom(32)

    def key_id(self, key: str) -> str:
        """An opaque id for `key`, stable for this process: how sessions tell keys apart."""
        return "key-" + hmac.new(self._id_secret, digest_key(key), hashlib.sha256).hexdigest()[:24]

    async def verify_token(self, token: str) -> TenantAccessToken | None:
        """The access token for a known key, else None (the SDK turns None into a 401)."""
        tenant = self._directory.resolve(token)
        if tenant is None:
            return None
        key_id = self.key_id(token)
        return TenantAccessToken(
            # The SDK never needs the key back; keep it out of every object that could be logged.
            token=key_id,
            client_id=key_id,
            subject=tenant.schema,
            scopes=[],
            claims={"iss": ISSUER_CLAIM},
            tenant=tenant,
        )


def auth_settings(public_url: str) -> AuthSettings:
    """Resource-server settings that advertise no OAuth at all.

    Keys are issued by the operator, not by an authorization server, so there is no protected-
    resource metadata to publish: naming an authorization server (even this one) sends an
    OAuth-capable host into discovery and registration against endpoints that do not exist. With
    no `resource_server_url` the SDK serves no metadata routes and its 401 challenge is a plain
    `Bearer` one, which says "send a bearer token" and nothing more; every OAuth discovery URL
    answers 404, so a host stops there and uses the header its user configured.
    """
    return AuthSettings(
        # Required by the SDK's model, used only by OAuth routes that are never mounted here.
        issuer_url=AnyHttpUrl(public_url),
        resource_server_url=None,
        validate_token_resource=False,
    )


def request_tenant() -> Tenant | None:
    """The tenant of the key on the HTTP request being served, if it carried a valid one."""
    token = get_access_token()
    return token.tenant if isinstance(token, TenantAccessToken) else None

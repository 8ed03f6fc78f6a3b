"""What the HTTP face checks before a request reaches a transport.

DNS rebinding: on a loopback address, a web page the user opened could point a name it
controls at 127.0.0.1 and talk to the server with the user's browser. The SDK only guards the
exact spellings `127.0.0.1`, `localhost` and `::1`; `transport_security` guards every loopback
bind, allowing the loopback names, the address actually bound and the `BULKHEAD_PUBLIC_URL` host,
on any port, and refusing every other `Host` and `Origin`.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings

from mcp_server.config import Settings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """`host` as a `Host` header spells it: lower case, an IPv6 address in brackets."""
    bare = host.strip("[]").lower()
    return f"[{bare}]" if ":" in bare else bare


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings | None:
    """Rebinding protection for a loopback bind; None (the SDK's default, off) for any other."""
    if not is_loopback(host):
        return None
    names = [*LOOPBACK_NAMES, host_name(host)]
    public = urlsplit(settings.public_url).hostname if settings.public_url else None
    if public:
        names.append(host_name(public))
    names = list(dict.fromkeys(names))
    origins = [f"{scheme}://{name}" for name in names for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        # `name:*` matches the name with any port; a Host header without a port needs `name` itself.
        allowed_hosts=[spelled for name in names for spelled in (name, f"{name}:*")],
        allowed_origins=[spelled for origin in origins for spelled in (origin, f"{origin}:*")],
    )

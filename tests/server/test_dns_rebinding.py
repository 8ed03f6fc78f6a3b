"""DNS rebinding: on every loopback spelling, a request naming another host is refused."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import pytest
from helpers import server_env, unique
from helpers.http import STARTUP_TIMEOUT, spawn

from mcp_server.config import load_settings
from mcp_server.server.http_guards import transport_security

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LISTENING = re.compile(r"listening on (http://\S+):")


@contextmanager
def server_on(host: str, env: dict[str, str]) -> Iterator[str]:
    """A server bound to `host` (any spelling); yields the URL it says it listens on."""
    process, log_path = spawn(env, "--host", host, "--port", "0")
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        found = None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            found = LISTENING.search(log_path.read_text(errors="replace"))
            time.sleep(0.1)
        assert found, log_path.read_text(errors="replace")
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log_path.unlink(missing_ok=True)


@pytest.mark.parametrize("host", ["127.0.0.2", "[::1]", "LOCALHOST"])
def test_every_loopback_spelling_refuses_foreign_host_and_origin_with_auth_off(pg_url: str, host: str) -> None:
    env = server_env(pg_url, default_schema=unique("rebind"), public_url="https://memory.example.org:8443")
    with server_on(host, env) as url, httpx2.Client(timeout=30) as http:
        port = url.rsplit(":", 1)[1]
        foreign_host = http.post(f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Host": f"evil.example:{port}"})
        foreign_origin = http.post(f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Origin": "http://evil.example"})
        with http.stream("GET", f"{url}/sse", headers={"Host": "evil.example"}) as sse:
            sse_status = sse.status_code  # an accepted stream would never end: read only its status
        assert (foreign_host.status_code, foreign_origin.status_code, sse_status) == (421, 403, 421)
        # The server's own names still work: as bound, the loopback names, and the public URL's host.
        for name in (f"localhost:{port}", f"127.0.0.1:{port}", "memory.example.org:8443"):
            own = http.post(f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Host": name})
            assert own.status_code == 200, (name, own.text)
        served = http.post(
            f"{url}/mcp", json=INITIALIZE, headers={**ACCEPT, "Origin": "https://memory.example.org:8443"}
        )
        assert served.status_code == 200


def test_a_non_loopback_bind_leaves_host_checks_to_the_proxy() -> None:
    settings = load_settings(_env_file=None)
    assert transport_security(settings, "0.0.0.0") is None
    guarded = transport_security(settings, "127.5.6.7")
    assert (
        guarded is not None and "127.5.6.7:*" in guarded.allowed_hosts and "evil.example:*" not in guarded.allowed_hosts
    )

"""Request latency over one kept-alive HTTP connection, against a fresh connection per request.

Starts `bulkhead serve --transport http` (auth off, loopback) and times N requests of each kind
(`GET /healthz`, and a streamable HTTP `initialize`), first opening a new connection for each
request (the baseline), then all over one kept-alive connection. Before the listening socket
named its protocol, asyncio left TCP_NODELAY off on accepted connections, and each kept-alive
request waited about 40 ms for the client's delayed ACK; now both columns should be close.
Prints medians, the command and the load average.

    python bench/keepalive.py [--requests 50]

Uses BULKHEAD_DATABASE_URL, else an embedded PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from helpers.http import ACCEPT, http_server  # noqa: E402
from helpers.http import INITIALIZE as INITIALIZE_REQUEST  # noqa: E402

INITIALIZE = json.dumps(INITIALIZE_REQUEST)


def timed(conn: http.client.HTTPConnection, method: str, path: str, body: str | None) -> float:
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=ACCEPT if body else {})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{method} {path} answered {response.status}")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_") or k == "BULKHEAD_DATABASE_URL"}
    env.update(BULKHEAD_DEFAULT_SCHEMA=f"bench_{uuid.uuid4().hex[:8]}", BULKHEAD_EMBEDDER="none")
    # Each initialize opens a session; the bench measures the transport, not the session cap.
    env.update(BULKHEAD_MAX_SESSIONS_PER_TENANT="100000", BULKHEAD_MAX_SESSIONS="100000")
    folder = Path(tempfile.mkdtemp(prefix="bulkhead-bench-"))
    env.setdefault("BULKHEAD_DATA_DIR", str(folder / "pg"))
    with http_server(env) as server:
        address = urlsplit(server.url)
        host, port = address.hostname or "127.0.0.1", address.port
        rows = []
        for label, method, path, body in (
            ("GET /healthz", "GET", "/healthz", None),
            ("POST /mcp initialize", "POST", "/mcp", INITIALIZE),
        ):
            fresh = []
            for _ in range(args.requests):
                conn = http.client.HTTPConnection(host, port)
                fresh.append(timed(conn, method, path, body))
                conn.close()
            kept = http.client.HTTPConnection(host, port)
            timed(kept, method, path, body)  # opens the connection
            reused = [timed(kept, method, path, body) for _ in range(args.requests)]
            kept.close()
            rows.append((label, statistics.median(fresh), statistics.median(reused)))
    print(f"command: python bench/keepalive.py --requests {args.requests}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'request':<24}{'fresh connection (median)':>28}{'kept alive (median)':>22}")
    for label, fresh_ms, kept_ms in rows:
        print(f"{label:<24}{fresh_ms:>25.1f} ms{kept_ms:>19.1f} ms")


if __name__ == "__main__":
    main()

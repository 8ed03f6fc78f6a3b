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
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "0"}},
    }
)
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_server", "serve", "--transport", "http", "--host", "127.0.0.1", "--port", "0"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://(127\.0\.0\.1):(\d+)", log.read_text(errors="replace"))
        if found:
            time.sleep(0.5)
            return process, found.group(1), int(found.group(2))
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server did not start:\n{log.read_text(errors='replace')}")


def timed(conn: http.client.HTTPConnection, method: str, path: str, body: str | None) -> float:
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=HEADERS if body else {})
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
    process, host, port = start_server(env, folder / "server.log")
    try:
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
    finally:
        process.terminate()
        process.wait(timeout=60)
    print(f"command: python bench/keepalive.py --requests {args.requests}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'request':<24}{'fresh connection (median)':>28}{'kept alive (median)':>22}")
    for label, fresh_ms, kept_ms in rows:
        print(f"{label:<24}{fresh_ms:>25.1f} ms{kept_ms:>19.1f} ms")


if __name__ == "__main__":
    main()

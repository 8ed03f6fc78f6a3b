"""How long one wide JSON request stalls the server for everyone else.

Starts `bulkhead serve --transport http` (auth off, loopback), opens a streamable HTTP session,
and sends one `retain` whose `tags` list holds N items, while another client asks `/healthz`
every 5 ms. Prints the slowest `/healthz` answer during the wide request (the event-loop
stall), a baseline measured the same way with a small request first, the wide request's status,
the command and the load average.

    python bench/wide_json.py [--tags 750000]

Uses BULKHEAD_DATABASE_URL, else an embedded PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from helpers.http import ACCEPT, http_server  # noqa: E402


async def worst_healthz_during(url: str, request: asyncio.Task[httpx2.Response]) -> float:
    async with httpx2.AsyncClient() as probe:
        worst = 0.0
        while not request.done():
            started = time.perf_counter()
            await probe.get(f"{url}/healthz")
            worst = max(worst, time.perf_counter() - started)
            await asyncio.sleep(0.005)
        return worst


async def measure(url: str, tags: int) -> tuple[float, int, int]:
    async with httpx2.AsyncClient(timeout=120) as http:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "b", "version": "0"},
            },
        }
        opened = await http.post(f"{url}/mcp", json=init, headers=ACCEPT)
        headers = {**ACCEPT, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        await http.post(f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        arguments = {"content": "wide", "bank": "b", "tags": ["t"] * tags}
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "retain", "arguments": arguments}}
        )
        task = asyncio.ensure_future(http.post(f"{url}/mcp", content=body, headers=headers))
        worst = await worst_healthz_during(url, task)
        return worst, (await task).status_code, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=750_000)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKHEAD_") or k == "BULKHEAD_DATABASE_URL"}
    env.update(
        BULKHEAD_DEFAULT_SCHEMA=f"bench_{uuid.uuid4().hex[:8]}", BULKHEAD_LOG_LEVEL="INFO", BULKHEAD_EMBEDDER="none"
    )
    folder = Path(tempfile.mkdtemp(prefix="bulkhead-bench-"))
    env.setdefault("BULKHEAD_DATA_DIR", str(folder / "pg"))
    with http_server(env) as server:
        baseline = asyncio.run(measure(server.url, 10))
        wide = asyncio.run(measure(server.url, args.tags))
    print(f"command: python bench/wide_json.py --tags {args.tags}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"baseline (10 tags, {baseline[2]} bytes): worst /healthz {baseline[0] * 1000:.1f} ms, status {baseline[1]}")
    print(f"wide ({args.tags} tags, {wide[2]} bytes): worst /healthz {wide[0] * 1000:.1f} ms, status {wide[1]}")


if __name__ == "__main__":
    main()

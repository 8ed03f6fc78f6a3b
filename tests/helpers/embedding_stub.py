"""A local HTTP server that speaks the OpenAI embeddings API, for testing the `openai` embedder.

Vectors are hashed bags of words, so texts sharing words are similar and the same text always
gets the same vector. The model name picks a behaviour: `stub` answers normally, `stub-slow`
answers after two seconds, `stub-broken` fails with HTTP 500, `stub-wrong-size` returns one
dimension too many; setting `broken` makes every model fail with HTTP 500 (an outage of the
service a schema's vectors came from). A request without the bearer key `stub-key` gets HTTP 401.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "stub-key"


def stub_vector(text: str, dimensions: int) -> list[float]:
    """A hashed bag of the words of `text` (not normalised: the client must do that)."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        vector[zlib.crc32(word.encode()) % dimensions] += 1.0
    vector[0] += 0.01
    return vector


@dataclass
class StubEmbeddings:
    """The running stub: its URL, the request bodies it received, and whether it fails them all."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    broken: bool = False


@contextmanager
def embeddings_stub() -> Iterator[StubEmbeddings]:
    """Serve the stub on a free loopback port for the duration of the block."""
    stub = StubEmbeddings("")
    received = stub.requests

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append(body)
            if self.path != "/v1/embeddings":
                return self._send(404, {"error": {"message": "not found"}})
            if self.headers.get("Authorization") != f"Bearer {KEY}":
                return self._send(401, {"error": {"message": "bad key"}})
            model = body.get("model")
            if model == "stub-broken" or stub.broken:
                return self._send(500, {"error": {"message": "boom"}})
            if model == "stub-slow":
                time.sleep(2)
            size = int(body.get("dimensions") or 8) + (model == "stub-wrong-size")
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": stub_vector(t, size)} for i, t in enumerate(inputs)
            ]
            # Out of order on purpose: clients must sort by index.
            self._send(200, {"object": "list", "data": data[::-1], "model": model, "usage": {"total_tokens": 0}})

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        yield stub
    finally:
        server.shutdown()
        server.server_close()

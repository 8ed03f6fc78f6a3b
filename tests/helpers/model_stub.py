"""A local HTTP server that speaks the OpenAI chat-completions and Anthropic Messages APIs, for
testing reflect's model endpoints, and the answer a stub model (or a test's sampling callback)
gives to a reflect prompt.

The stub model reads the evidence out of the prompt and answers with the evidence line that
shares most words with the question, citing its number. The model name picks a behaviour:
`stub` answers so, `stub-invent` also cites evidence that does not exist, `stub-uncited` cites
nothing, `stub-slow` answers after three seconds, `stub-429` and `stub-500` fail with that
status, `stub-malformed` sends a body that is not JSON, `stub-empty` sends valid JSON with no
answer. A request without the key `stub-llm-key` (as a bearer header for OpenAI, `x-api-key`
for Anthropic) gets HTTP 401.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "stub-llm-key"
EVIDENCE_LINE = re.compile(r'^\[(\d+)\] [^:]+: (".*")$', re.MULTILINE)
QUESTION_LINE = re.compile(r'^Question: (".*")$', re.MULTILINE)


def evidence_in(user: str) -> dict[int, str]:
    """The numbered evidence quoted in a reflect prompt's user message."""
    return {int(number): json.loads(quoted) for number, quoted in EVIDENCE_LINE.findall(user)}


def question_in(user: str) -> str:
    found = QUESTION_LINE.search(user)
    return json.loads(found.group(1)) if found else ""


def stub_answer(user: str, *, invent: bool = False) -> str:
    """The stub model's answer: the best-matching evidence, cited by its number."""
    evidence = evidence_in(user)
    if not evidence:
        return "I don't know."
    wanted = set(re.findall(r"\w{3,}", question_in(user).lower()))
    number = max(evidence, key=lambda n: (len(wanted & set(re.findall(r"\w{3,}", evidence[n].lower()))), -n))
    invented = f" [{len(evidence) + 7}]" if invent else ""
    return f"From memory: {evidence[number]} [{number}]{invented}"


@dataclass
class Received:
    """One request the stub received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user(self) -> str:
        """The user message's text, whichever API it came by."""
        return next(m["content"] for m in self.body["messages"] if m["role"] == "user")

    @property
    def system(self) -> str:
        if "system" in self.body:
            return str(self.body["system"])
        return next(m["content"] for m in self.body["messages"] if m["role"] == "system")


@dataclass
class StubModel:
    """The running stub: its base URL (`.../v1`) and what it received."""

    url: str
    requests: list[Received] = field(default_factory=list)


def _reply(path: str, model: str, text: str) -> dict[str, Any]:
    if path.endswith("/messages"):
        return {"type": "message", "role": "assistant", "model": model, "content": [{"type": "text", "text": text}]}
    return {
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


@contextmanager
def model_stub() -> Iterator[StubModel]:
    """Serve the stub on a free loopback port for the duration of the block."""
    stub = StubModel("")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                stub.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path not in ("/v1/chat/completions", "/v1/messages"):
                return self._send(404, {"error": {"message": "not found"}})
            anthropic = self.path == "/v1/messages"
            key = self.headers.get("x-api-key") if anthropic else self.headers.get("Authorization")
            if key != (KEY if anthropic else f"Bearer {KEY}"):
                return self._send(401, {"error": {"message": "bad key"}})
            model = str(body.get("model"))
            user = Received(self.path, {}, body).user
            if model == "stub-429":
                return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
            if model == "stub-500":
                return self._send(500, {"error": {"message": "boom"}})
            if model == "stub-malformed":
                return self._send_raw(200, b'{"choices": [ this is not json')
            if model == "stub-empty":
                return self._send(200, {"choices": [], "content": []})
            if model == "stub-slow":
                time.sleep(3)
            if model == "stub-uncited":
                return self._send(200, _reply(self.path, model, "Probably on a Tuesday, I think."))
            self._send(200, _reply(self.path, model, stub_answer(user, invent=model == "stub-invent")))

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), headers)

        def _send_raw(self, status: int, raw: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()

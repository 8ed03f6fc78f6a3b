"""One error model: every kind maps once per surface, and a known failure never ends in a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from helpers import call, call_error, in_process_client, run_bulkhead, server_env, unique
from helpers.embedding_stub import KEY, StubEmbeddings, embeddings_stub

from mcp_server.cli import EXIT_CODE
from mcp_server.errors import HTTP_STATUS, ErrorKind, InvalidInput, Unavailable, find_error
from mcp_server.server.calls import OUTCOME

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def stub() -> Iterator[StubEmbeddings]:
    with embeddings_stub() as running:
        yield running


def test_every_kind_is_mapped_on_every_surface() -> None:
    assert set(OUTCOME) == set(EXIT_CODE) == set(HTTP_STATUS) == set(ErrorKind)
    assert OUTCOME[ErrorKind.UNAVAILABLE] == "unavailable" and EXIT_CODE[ErrorKind.UNAVAILABLE] == 3
    assert HTTP_STATUS[ErrorKind.UNAVAILABLE] == 503 and HTTP_STATUS[ErrorKind.INVALID] == 400


def test_find_error_looks_through_causes_and_groups() -> None:
    inner = Unavailable("down")
    try:
        raise RuntimeError("wrapped") from inner
    except RuntimeError as wrapped:
        assert find_error(ExceptionGroup("tasks", [ValueError("x"), wrapped])) is inner
    assert find_error(ValueError("plain")) is None
    detailed = InvalidInput("public sentence", detail="for the operator")
    assert detailed.message == "public sentence" and str(detailed) == "for the operator"


async def test_an_embedding_outage_is_unavailable_and_stores_nothing(
    pg_url: str, stub: StubEmbeddings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {
        "embedder": "openai",
        "embedding_url": stub.url,
        "embedding_model": "stub-broken",
        "embedding_dimensions": 16,
        "embedding_api_key": KEY,
    }
    caplog.set_level(logging.INFO, logger="mcp_server.calls")
    async with in_process_client(pg_url, unique("outage"), **settings) as client:
        text = await call_error(client, "retain", content="Nothing of this may be stored.")
        assert text == (
            "Error executing tool retain: the embedding service is busy or failing (HTTP 500); "
            "nothing was changed, retry later."
        )
        assert (await call(client, "list_banks"))["banks"] == []
    outcomes = [
        r.getMessage().split("outcome=")[1].split()[0] for r in caplog.records if "tool=retain" in r.getMessage()
    ]
    assert outcomes == ["unavailable"]


async def test_refused_embedding_credentials_are_the_operators_error(
    pg_url: str, stub: StubEmbeddings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {
        "embedder": "openai",
        "embedding_url": stub.url,
        "embedding_model": "stub",
        "embedding_dimensions": 16,
        "embedding_api_key": "not-the-stub-key",
    }
    caplog.set_level(logging.INFO, logger="mcp_server.calls")
    async with in_process_client(pg_url, unique("refused"), **settings) as client:
        text = await call_error(client, "recall", query="anything")
        assert "refused the configured credentials (HTTP 401)" in text and "not-the-stub-key" not in text
    assert any("tool=recall" in r.getMessage() and "outcome=error" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("args", "settings", "code", "line"),
    [
        (("migrate", "--schema", "Not A Schema"), {}, 2, "bulkhead: schema name 'Not A Schema' is not allowed"),
        (("reembed", "--schema", "s", "--batch-size", "0"), {}, 2, "bulkhead: --batch-size must be at least 1"),
        (("reembed", "--all"), {"embedder": "none"}, 2, "bulkhead: BULKHEAD_EMBEDDER is none"),
        (("serve", "--transport", "http", "--port", "70000"), {}, 2, "bulkhead: --port 70000 is not a TCP port"),
    ],
)
def test_known_cli_failures_are_one_line(args: tuple[str, ...], settings: dict[str, str], code: int, line: str) -> None:
    env = server_env("postgresql://nobody@127.0.0.1:1/none", **settings)
    done = run_bulkhead(*args, env=env, timeout=60)
    assert done.returncode == code, done.stderr
    [printed] = done.stderr.strip().splitlines()
    assert printed.startswith(line)

"""What one server process remembers of a schema, when another process changes the schema.

A running server caches that a schema is provisioned and that its vectors fit the embedder. An
operator's command in another process (another replica, or the CLI) can make either stale: the
server notices on the next statement that meets the change, answers that one call with "retry",
and checks afresh on the next; a reembed by another embedder of the same size changes only the
schema's record of its embedder, which a server reads again once a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import call, call_error, in_process_client, run_bulkhead, server_env, unique
from helpers.embedding_stub import KEY, StubEmbeddings, embeddings_stub

from mcp_server import runtime

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def stub() -> Iterator[StubEmbeddings]:
    with embeddings_stub() as running:
        yield running


def openai(stub: StubEmbeddings, dimensions: int, model: str = "stub") -> dict[str, Any]:
    return {
        "embedder": "openai",
        "embedding_url": stub.url,
        "embedding_model": model,
        "embedding_dimensions": dimensions,
        "embedding_api_key": KEY,
    }


async def test_a_schema_dropped_under_a_running_server_is_made_anew(pg_url: str) -> None:
    schema = unique("gone")
    async with in_process_client(pg_url, schema, embedder="none") as client:
        await call(client, "retain", content="Written before the drop.", bank="notes")
        dropped = run_bulkhead("tenants", "drop", "--schema", schema, "--yes", env=server_env(pg_url, embedder="none"))
        assert dropped.returncode == 0, dropped.stderr
        assert "retry" in await call_error(client, "list_banks")
        # Provisioned again, empty: the drop took everything.
        assert (await call(client, "list_banks"))["banks"] == []
        await call(client, "retain", content="Written after the drop.", bank="notes")
        found = await call(client, "recall", query="written", bank="notes")
        assert [m["text"] for m in found["memories"]] == ["Written after the drop."]


async def test_a_reembed_by_another_process_is_noticed_by_a_running_server(pg_url: str, stub: StubEmbeddings) -> None:
    schema = unique("moved")
    async with in_process_client(pg_url, schema, **openai(stub, 16)) as client:
        await call(client, "retain", content="Sixteen numbers per vector.", bank="notes")
        env = server_env(pg_url, **{k: str(v) for k, v in openai(stub, 24).items()})
        result = run_bulkhead("reembed", "--schema", schema, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        # The statement that meets the new size says retry; the next call names the fix.
        assert "retry" in await call_error(client, "retain", content="Still sixteen here.", bank="notes")
        refused = await call_error(client, "recall", query="vector", bank="notes")
        assert "holds 24-dimension embeddings" in refused and f"bulkhead reembed --schema {schema}" in refused


async def test_a_reembed_by_another_embedder_of_the_same_size_is_noticed_within_a_minute(
    pg_url: str, stub: StubEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = unique("moved")
    async with in_process_client(pg_url, schema, **openai(stub, 16)) as client:
        await call(client, "retain", content="Made by the first model.", bank="notes")
        env = server_env(pg_url, **{k: str(v) for k, v in openai(stub, 16, model="stub-next").items()})
        result = run_bulkhead("reembed", "--schema", schema, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        # Within the minute the record is trusted; past it (here: at once), read again.
        assert (await call(client, "recall", query="model", bank="notes"))["memories"]
        monkeypatch.setattr(runtime, "EMBEDDER_RECHECK_SECONDS", 0.0)
        refused = await call_error(client, "retain", content="Not by the old model, no more.", bank="notes")
        assert "made by openai-compatible stub-next but the server's embedder is openai-compatible stub" in refused
    async with in_process_client(pg_url, schema, **openai(stub, 16, model="stub-next")) as client:
        found = await call(client, "recall", query="model", bank="notes")
        assert [m["text"] for m in found["memories"]] == ["Made by the first model."]

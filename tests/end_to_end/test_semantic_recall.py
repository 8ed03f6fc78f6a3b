"""Semantic recall end to end: embedders behind the tools, fixed dimensions, and reembed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import call, call_error, connect, in_process_client, run_bulkhead, server_env, stdio_client, unique
from helpers.embedding_stub import KEY, StubEmbeddings, embeddings_stub

pytestmark = pytest.mark.anyio

MEMORY = "My sister adopted a kitten last spring."
PARAPHRASE = "Which family member got another cat?"
OTHERS = ["The quarterly report is due on Friday.", "We repainted the kitchen walls blue."]


@pytest.fixture(scope="module")
def stub() -> Iterator[StubEmbeddings]:
    with embeddings_stub() as running:
        yield running


def openai(stub: StubEmbeddings, dimensions: int, model: str = "stub") -> dict[str, Any]:
    """Settings for the `openai` embedder pointed at the stub."""
    return {
        "embedder": "openai",
        "embedding_url": stub.url,
        "embedding_model": model,
        "embedding_dimensions": dimensions,
        "embedding_api_key": KEY,
    }


async def test_a_paraphrase_is_recalled_by_local_and_not_by_none(pg_url: str) -> None:
    words = lambda text: {w.strip("?.").lower() for w in text.split()}  # noqa: E731
    assert not words(MEMORY) & words(PARAPHRASE)
    schema = unique("sem")
    async with in_process_client(pg_url, schema, embedder="local") as client:
        for text in (MEMORY, *OTHERS):
            await call(client, "retain", content=text)
        found = await call(client, "recall", query=PARAPHRASE)
    assert found["memories"][0]["text"] == MEMORY and found["memories"][0]["score"] > 0
    assert all(m["text"] == MEMORY for m in found["memories"])  # the unrelated ones fall below the floor
    async with in_process_client(pg_url, schema, embedder="none") as client:
        assert (await call(client, "recall", query=PARAPHRASE))["memories"] == []
        assert (await call(client, "recall", query="kitten"))["memories"][0]["text"] == MEMORY


async def test_a_small_banks_memories_stay_out_of_the_vector_index_and_are_recalled(pg_url: str) -> None:
    schema = unique("sem")
    async with in_process_client(pg_url, schema, embedder="local") as client:
        for text in (MEMORY, *OTHERS):
            await call(client, "retain", content=text)
        found = await call(client, "recall", query=PARAPHRASE)
    assert found["memories"][0]["text"] == MEMORY
    conn = await connect(pg_url)
    try:
        marked = await conn.fetch(f'SELECT in_vector_index FROM "{schema}".memories')
    finally:
        await conn.close()
    # Recall compares every vector of a bank this small itself; the index would serve no search.
    assert [row["in_vector_index"] for row in marked] == [False] * 3


async def test_openai_compatible_embedder_over_stdio(pg_url: str, stub: StubEmbeddings) -> None:
    schema = unique("sem")
    settings = {k: str(v) for k, v in openai(stub, 16).items()}
    async with stdio_client(server_env(pg_url, default_schema=schema, **settings)) as client:
        await call(client, "retain", content="Rosa plays the cello on Sundays.", bank="b")
        await call(client, "retain", content="The boiler was serviced in March.", bank="b")
        found = await call(client, "recall", query="who plays cello", bank="b")
        assert found["memories"][0]["text"] == "Rosa plays the cello on Sundays."
    assert {
        "model": "stub",
        "input": ["who plays cello"],
        "dimensions": 16,
        "encoding_format": "float",
    } in stub.requests

    stub.broken = True
    try:
        async with stdio_client(server_env(pg_url, default_schema=schema, **settings)) as client:
            text = await call_error(client, "retain", content="This must not be stored.", bank="b")
            assert text.endswith(
                "the embedding service is busy or failing (HTTP 500); nothing was changed, retry later."
            )
            assert "busy or failing" in await call_error(client, "recall", query="other words", bank="b")
            [bank] = (await call(client, "list_banks"))["banks"]
            assert bank["memories"] == 2
    finally:
        stub.broken = False


async def test_a_schema_of_another_dimension_is_refused(pg_url: str, stub: StubEmbeddings) -> None:
    schema = unique("sem")
    async with in_process_client(pg_url, schema, **openai(stub, 16)) as client:
        await call(client, "retain", content="Sixteen numbers per vector here.")
    async with in_process_client(pg_url, schema, **openai(stub, 24)) as client:
        for tool, arguments in (("recall", {"query": "vector"}), ("retain", {"content": "x"}), ("list_banks", {})):
            text = await call_error(client, tool, **arguments)
            assert "holds 16-dimension embeddings" in text and "makes 24-dimension ones" in text
            assert f"bulkhead reembed --schema {schema}" in text
    async with in_process_client(pg_url, schema, **openai(stub, 16)) as client:
        assert (await call(client, "recall", query="vector"))["memories"]


async def test_reembed_round_trip(pg_url: str, stub: StubEmbeddings) -> None:
    schema = unique("sem")
    texts = ["Rosa plays the cello.", "Omar fixed the red bicycle.", "The boiler was serviced."]
    async with in_process_client(pg_url, schema, **openai(stub, 16)) as client:
        for text in texts:
            await call(client, "retain", content=text)
    env = server_env(pg_url, **{k: str(v) for k, v in openai(stub, 24).items()})
    result = run_bulkhead("reembed", "--schema", schema, "--batch-size", "2", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"reembed {schema} [" in result.stderr and "3/3" in result.stderr
    assert f"schema {schema}: 3 memories embedded by openai-compatible stub (24 dimensions)" in result.stderr
    assert result.stdout == ""
    conn = await connect(pg_url)
    try:
        table = f'"{schema}".memories'
        assert (
            await conn.fetchval(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'embedding'", table
            )
            == 24
        )
        assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE embedding IS NOT NULL") == 3
        index = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'memories_embedding_idx'", schema
        )
        assert "halfvec(24)" in index
    finally:
        await conn.close()
    async with in_process_client(pg_url, schema, **openai(stub, 24)) as client:
        found = await call(client, "recall", query="bicycle fixed")
        assert found["memories"][0]["text"] == "Omar fixed the red bicycle."
        await call(client, "retain", content="Added after the reembed.")
    async with in_process_client(pg_url, schema, **openai(stub, 16)) as client:
        assert "holds 24-dimension embeddings" in await call_error(client, "recall", query="cello")


async def test_a_schema_another_embedder_made_is_refused_until_reembedded(pg_url: str, stub: StubEmbeddings) -> None:
    """Same dimension, another model: the vectors would not compare, so the schema is refused."""
    schema = unique("sem")
    first, second = openai(stub, 16), openai(stub, 16, model="stub-other")
    async with in_process_client(pg_url, schema, **first) as client:
        await call(client, "retain", content="Rosa plays the cello.")
    async with in_process_client(pg_url, schema, **second) as client:
        for tool, arguments in (("recall", {"query": "cello"}), ("retain", {"content": "x"}), ("list_banks", {})):
            text = await call_error(client, tool, **arguments)
            assert "made by openai-compatible stub but the server's embedder is openai-compatible stub-other" in text
            assert f"bulkhead reembed --schema {schema}" in text
    result = run_bulkhead(
        "reembed", "--schema", schema, env=server_env(pg_url, **{k: str(v) for k, v in second.items()})
    )
    assert result.returncode == 0, result.stderr
    async with in_process_client(pg_url, schema, **second) as client:
        assert (await call(client, "recall", query="cello"))["memories"][0]["text"] == "Rosa plays the cello."
    async with in_process_client(pg_url, schema, **first) as client:
        assert "made by openai-compatible stub-other" in await call_error(client, "recall", query="cello")

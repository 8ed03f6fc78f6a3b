"""The record of which embedder made a schema's vectors (schema/0009_embedder_record.sql)."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest
from helpers import unique

from mcp_server.config import load_settings
from mcp_server.db.pool import create_pool
from mcp_server.store import NewDocument, Provisioner, StoreRegistry, TenantStore, VectorRewrite, recorded_embedder
from mcp_server.store.codecs import register_vector_codec

pytestmark = pytest.mark.anyio


async def provisioned_store(pool: asyncpg.Pool) -> TenantStore:
    provisioner = Provisioner(pool, embedding_dim=4)
    await provisioner.bootstrap()
    return await StoreRegistry(pool, provisioner).for_schema(unique("rec"))


async def test_the_first_embedder_is_recorded_and_reembed_replaces_it(pg_url: str) -> None:
    pool = await create_pool(load_settings(_env_file=None, database_url=pg_url), on_connect=register_vector_codec)
    try:
        store = await provisioned_store(pool)
        assert await recorded_embedder(store, "model a") == "model a"
        assert await recorded_embedder(store, "model b") == "model a"
        rewrite = VectorRewrite(store, 4, "model b")
        await rewrite.begin()
        await rewrite.finish()
        assert await recorded_embedder(store, "model a") == "model b"
    finally:
        await pool.close()


async def test_a_schema_older_than_the_record_takes_the_first_embedder_that_checks_it(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await create_pool(load_settings(_env_file=None, database_url=pg_url), on_connect=register_vector_codec)
    try:
        store = await provisioned_store(pool)
        document = NewDocument(
            document_id="d", chunks=["an old memory"], context=None, tags=[], metadata={}, occurred_at=None
        )
        await store.retain("bank", document, [np.array([1, 0, 0, 0], np.float32)])
        async with store.transaction() as conn:
            await conn.execute(f'DELETE FROM "{store.schema}".embedder')
        assert await recorded_embedder(store, "model a") == "model a"
        assert "holds vectors from before embedders were recorded" in caplog.text
        assert f"bulkhead reembed --schema {store.schema}" in caplog.text
        assert await recorded_embedder(store, "model b") == "model a"
    finally:
        await pool.close()

"""The running server's shared state: settings, tenants, the database and the embedder."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mcp_server.config import Settings
from mcp_server.db.pool import create_pool
from mcp_server.embedding import Embedder, build_embedder
from mcp_server.store import Provisioner, StoreRegistry, TenantStore, register_vector_codec
from mcp_server.store.provisioning import DEFAULT_EMBEDDING_DIM
from mcp_server.tenancy import Tenant, TenantDirectory

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What every request may use. `stdio_tenant` is set when serving one stdio session.

    `embedder` is None when recall is lexical-only (`BULKHEAD_EMBEDDER=none`).
    """

    settings: Settings
    directory: TenantDirectory
    stores: StoreRegistry
    stdio_tenant: Tenant | None = None
    embedder: Embedder | None = None

    async def store_for(self, tenant: Tenant) -> TenantStore:
        """The provisioned store of the tenant's schema."""
        return await self.stores.for_schema(tenant.schema)


@asynccontextmanager
async def open_runtime(
    settings: Settings, directory: TenantDirectory, *, stdio_tenant: Tenant | None = None
) -> AsyncIterator[Runtime]:
    """Open the pool and bootstrap the database; close the pool and the embedder on the way out.

    The embedder is built but not loaded: the local model loads on the first retain or recall.
    """
    pool = await create_pool(settings, on_connect=register_vector_codec)
    embedder = build_embedder(settings)
    try:
        dimension = embedder.dimension if embedder is not None else None
        provisioner = Provisioner(pool, embedding_dim=dimension or DEFAULT_EMBEDDING_DIM)
        await provisioner.bootstrap()
        if provisioner.has_vector:
            # Connections opened before the extension existed lack its codec: replace them.
            await pool.expire_connections()
        stores = StoreRegistry(
            pool, provisioner, embedding_dim=dimension, embedder_name=embedder.name if embedder else ""
        )
        if embedder is None:
            logger.info("BULKHEAD_EMBEDDER is none: recall is lexical-only")
        yield Runtime(settings, directory, stores, stdio_tenant, embedder)
    finally:
        if embedder is not None:
            await embedder.aclose()
        await pool.close()

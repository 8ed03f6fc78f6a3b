"""The running server's shared state: settings, tenants, and the database behind them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mcp_server.config import Settings
from mcp_server.db.pool import create_pool
from mcp_server.store import Provisioner, StoreRegistry, TenantStore
from mcp_server.tenancy import Tenant, TenantDirectory

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What every request may use. `stdio_tenant` is set when serving one stdio session."""

    settings: Settings
    directory: TenantDirectory
    stores: StoreRegistry
    stdio_tenant: Tenant | None = None

    async def store_for(self, tenant: Tenant) -> TenantStore:
        """The provisioned store of the tenant's schema."""
        return await self.stores.for_schema(tenant.schema)


@asynccontextmanager
async def open_runtime(
    settings: Settings, directory: TenantDirectory, *, stdio_tenant: Tenant | None = None
) -> AsyncIterator[Runtime]:
    """Open the pool and bootstrap the database; close the pool on the way out."""
    pool = await create_pool(settings)
    try:
        provisioner = Provisioner(pool)
        await provisioner.bootstrap()
        yield Runtime(settings, directory, StoreRegistry(pool, provisioner), stdio_tenant)
    finally:
        await pool.close()

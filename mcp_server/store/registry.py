"""`StoreRegistry`: hands out one provisioned `TenantStore` per schema."""

from __future__ import annotations

import asyncpg

from mcp_server.db.pool import Waiting
from mcp_server.store.provisioning import Provisioner
from mcp_server.store.tenant_store import TenantStore


class StoreRegistry:
    """Lazily provisions a schema on its first use in this process and keeps its store."""

    def __init__(self, pool: asyncpg.Pool, provisioner: Provisioner) -> None:
        self.pool = pool
        self.provisioner = provisioner
        self._stores: dict[str, TenantStore] = {}
        self.waiting = Waiting()

    async def for_schema(self, schema: str) -> TenantStore:
        """The store of `schema`, migrating it first if this process has not yet done so."""
        store = self._stores.get(schema)
        if store is None:
            await self.provisioner.provision(schema)
            store = TenantStore(self.pool, schema, vector_schema=self.provisioner.vector_schema, on_missing=self.forget)
            store = self._stores.setdefault(schema, store)
        return store

    def forget(self, schema: str) -> None:
        """Drop what this process knows of `schema` (it was dropped elsewhere): the next use provisions it."""
        self._stores.pop(schema, None)
        self.provisioner.forget(schema)

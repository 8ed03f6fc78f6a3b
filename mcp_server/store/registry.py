"""`StoreRegistry`: hands out one provisioned `TenantStore` per schema."""

from __future__ import annotations

import asyncpg

from mcp_server.store.provisioning import Provisioner
from mcp_server.store.tenant_store import TenantStore
from mcp_server.store.vectors import DimensionMismatchError, stored_dimension


class StoreRegistry:
    """Lazily provisions a schema on its first use and keeps its store.

    With `embedding_dim` set, a schema whose vectors have another dimension is refused (every
    time it is asked for, until it is reembedded) rather than handed out.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        provisioner: Provisioner,
        *,
        embedding_dim: int | None = None,
        embedder_name: str = "",
    ) -> None:
        self.pool = pool
        self.provisioner = provisioner
        self.embedding_dim = embedding_dim
        self.embedder_name = embedder_name
        self._stores: dict[str, TenantStore] = {}

    async def for_schema(self, schema: str) -> TenantStore:
        """The store of `schema`, migrating it first if this process has not yet done so."""
        store = self._stores.get(schema)
        if store is None:
            store = await self.unchecked(schema)
            stored = await stored_dimension(store)
            if self.embedding_dim is not None and stored is not None and stored != self.embedding_dim:
                raise DimensionMismatchError(schema, stored, self.embedding_dim, self.embedder_name)
            store = self._stores.setdefault(schema, store)
        return store

    async def unchecked(self, schema: str) -> TenantStore:
        """A provisioned store of `schema` without the dimension check (for reembed), not kept."""
        await self.provisioner.provision(schema)
        return TenantStore(self.pool, schema, vector_schema=self.provisioner.vector_schema)

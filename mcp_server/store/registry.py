"""`StoreRegistry`: hands out one provisioned `TenantStore` per schema."""

from __future__ import annotations

from collections import OrderedDict

import asyncpg

from mcp_server.db.pool import LateCommits, Waiting
from mcp_server.store.provisioning import Provisioner
from mcp_server.store.tenant_store import TenantStore

# Stores kept for the schemas used most recently. A store holds its schema's rendered statements
# (tens of KiB); past this many tenants, a returning one gets its store rendered again (and its
# vector dimension checked again), which costs far less than a call.
STORES_KEPT = 256


class StoreRegistry:
    """Lazily provisions a schema on its first use in this process and keeps its store.

    Provisioning is remembered for every schema (a name each); stores only for the
    `stores_kept` most recently used, so that memory does not grow with the number of tenants.
    """

    def __init__(self, pool: asyncpg.Pool, provisioner: Provisioner, *, stores_kept: int = STORES_KEPT) -> None:
        self.pool = pool
        self.provisioner = provisioner
        self.stores_kept = stores_kept
        self._stores: OrderedDict[str, TenantStore] = OrderedDict()
        self.waiting = Waiting()
        self.late_commits = LateCommits()

    async def for_schema(self, schema: str) -> TenantStore:
        """The store of `schema`, migrating it first if this process has not yet done so."""
        store = self._stores.get(schema)
        if store is not None:
            self._stores.move_to_end(schema)
            return store
        await self.provisioner.provision(schema)
        store = self._stores.get(schema)
        if store is None:
            store = TenantStore(
                self.pool,
                schema,
                vector_schema=self.provisioner.vector_schema,
                embedding_dim=self.provisioner.embedding_dim,
                on_missing=self.forget,
                waiting=self.waiting,
                late_commits=self.late_commits,
            )
            self._stores[schema] = store
            while len(self._stores) > self.stores_kept:
                self._stores.popitem(last=False)
        return store

    async def settle(self) -> None:
        """Wait for the read-only transactions still being committed (before the pool closes)."""
        await self.late_commits.settle()

    def forget(self, schema: str) -> None:
        """Drop what this process knows of `schema` (it was dropped elsewhere): the next use provisions it."""
        self._stores.pop(schema, None)
        self.provisioner.forget(schema)

"""What a running Bulkhead process holds: settings, tenants, the pool and stores, the embedder,
the synthesiser.

Opened by a transport runner (stdio or HTTP) or by a CLI command that needs the database, and
closed when it ends. Knows nothing of MCP: the server, the CLI and the benches all start here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from mcp_server.config import Settings
from mcp_server.db.pool import create_pool, release_database
from mcp_server.embedding import Embedder, build_embedder
from mcp_server.errors import Limited, Misconfigured
from mcp_server.llm import EndpointSynthesiser, build_synthesiser
from mcp_server.store import (
    Provisioner,
    StoreRegistry,
    TenantStore,
    recorded_embedder,
    register_vector_codec,
    stored_dimension,
)
from mcp_server.store.provisioning import DEFAULT_EMBEDDING_DIM
from mcp_server.tenancy import Tenant, TenantDirectory, TenantLimits

logger = logging.getLogger(__name__)

# How long a schema's vectors, once found to be the embedder's, are trusted before the record is
# read again (one small statement a minute per tenant in use).
EMBEDDER_RECHECK_SECONDS = 60.0


class ForeignVectors(Misconfigured):
    """A schema's vectors are not the configured embedder's: each call is refused until reembed."""


class DimensionMismatch(ForeignVectors):
    """A schema's vectors have another dimension than the configured embedder's."""

    def __init__(self, schema: str, stored: int, configured: int, embedder: str) -> None:
        super().__init__(
            f"this memory store holds {stored}-dimension embeddings but the server's embedder ({embedder}) "
            f"makes {configured}-dimension ones; the operator must run `bulkhead reembed --schema {schema}` "
            "or configure the embedder the store was made with."
        )
        self.schema, self.stored, self.configured = schema, stored, configured


class EmbedderMismatch(ForeignVectors):
    """A schema's vectors were made by another embedder than the configured one."""

    def __init__(self, schema: str, recorded: str, configured: str) -> None:
        super().__init__(
            f"this memory store's embeddings were made by {recorded} but the server's embedder is {configured}, "
            f"and the two do not compare; the operator must run `bulkhead reembed --schema {schema}` "
            "or configure the embedder the store was made with."
        )
        self.schema, self.recorded, self.configured = schema, recorded, configured


class CallBucket:
    """A token bucket: `rate` tool calls a second on average, up to `capacity` at once."""

    def __init__(self, rate: float, capacity: int) -> None:
        self.rate = rate
        self.capacity = float(max(capacity, 1))
        self._tokens = self.capacity
        self._updated = time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one; False if the bucket is empty."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def over_rate(limits: TenantLimits) -> Limited:
    """The refusal of a call beyond the tenant's rate."""
    return Limited(
        f"this tenant may make {limits.calls_per_second:g} tool calls a second (bursts of "
        f"{max(limits.burst, 1)}); wait a moment, then retry."
    )


@dataclass
class Runtime:
    """What every request may use. `embedder` is None when recall is lexical-only; `synthesiser`
    is None when no model endpoint is configured for reflect.

    `call_observers` are told of every tool call: (tenant label, tool, outcome, seconds).
    """

    settings: Settings
    directory: TenantDirectory
    stores: StoreRegistry
    embedder: Embedder | None = None
    synthesiser: EndpointSynthesiser | None = None
    call_observers: list[Callable[[str, str, str, float], None]] = field(default_factory=list)

    async def check_ready(self) -> None:
        """Raise a `BulkheadError` unless the database answers and the schema served without
        auth (if any) has every migration; a tenant schema is migrated on its first call."""
        await self.stores.provisioner.check()
        if not self.directory.auth_enabled:
            await self.stores.for_schema(self.directory.default.schema)

    _buckets: dict[str, CallBucket] = field(default_factory=dict)

    def admit(self, tenant: Tenant) -> None:
        """Count one tool call against the tenant's rate; raises `Limited` beyond it."""
        limits = self.directory.limits_for(tenant.schema)
        if not limits.calls_per_second:
            return
        bucket = self._buckets.get(tenant.schema)
        if bucket is None:
            bucket = self._buckets[tenant.schema] = CallBucket(limits.calls_per_second, limits.burst)
        if not bucket.take():
            raise over_rate(limits)

    async def store_for(self, tenant: Tenant) -> TenantStore:
        """The provisioned store of the tenant's schema, if its vectors are the embedder's.

        A schema whose vectors have another dimension, or were recorded as made by another
        embedder, is refused each time it is asked for (until it is reembedded, perhaps by
        another process), never handed out. A fit, once found, is checked again when a statement
        meets vectors of another size, which is how this process learns that another one
        reembedded the schema, and once a minute, since a reembed elsewhere by another embedder
        of the same dimension changes only the record.
        """
        store = await self.stores.for_schema(tenant.schema)
        if time.monotonic() - store.embedder_checked_at > EMBEDDER_RECHECK_SECONDS:
            if self.embedder is not None:
                stored = await stored_dimension(store)
                if stored is not None and stored != self.embedder.dimension:
                    raise DimensionMismatch(tenant.schema, stored, self.embedder.dimension, self.embedder.name)
                recorded = await recorded_embedder(store, self.embedder.name)
                if recorded != self.embedder.name:
                    raise EmbedderMismatch(tenant.schema, recorded, self.embedder.name)
            store.embedder_checked_at = time.monotonic()
        return store


def _refuse_vector_schema_as_tenant(directory: TenantDirectory, vector_schema: str | None) -> None:
    """pgvector's schema serves every tenant; a key mapped to it would break them all on first use."""
    # `public` is shared by design and never handed to a tenant role (see store.roles).
    if vector_schema is not None and vector_schema != "public" and vector_schema in directory.schemas:
        raise Misconfigured(
            f"schema {vector_schema} holds the pgvector extension every tenant uses, so no key (nor "
            "BULKHEAD_DEFAULT_SCHEMA) may map to it; choose a schema of its own"
        )


@asynccontextmanager
async def open_runtime(settings: Settings, directory: TenantDirectory) -> AsyncIterator[Runtime]:
    """Open the pool and bootstrap the database; close the pool, the embedder and the synthesiser
    on the way out.

    The embedder is built but not loaded: the local model loads on the first retain or recall.
    """
    pool = await create_pool(settings, on_connect=register_vector_codec)
    embedder = build_embedder(settings)
    synthesiser = build_synthesiser(settings)
    try:
        dimension = embedder.dimension if embedder is not None else None
        provisioner = Provisioner(pool, embedding_dim=dimension or DEFAULT_EMBEDDING_DIM)
        await provisioner.bootstrap()
        _refuse_vector_schema_as_tenant(directory, provisioner.vector_schema)
        if provisioner.has_vector:
            # Connections opened before the extension existed lack its codec: replace them.
            await pool.expire_connections()
        if embedder is None:
            logger.info("BULKHEAD_EMBEDDER is none: recall is lexical-only")
        if synthesiser is not None:
            logger.info("reflect answers with %s", synthesiser.name)
        stores = StoreRegistry(pool, provisioner)
        try:
            yield Runtime(settings, directory, stores, embedder, synthesiser)
        finally:
            await stores.settle()
    finally:
        if synthesiser is not None:
            await synthesiser.aclose()
        if embedder is not None:
            await embedder.aclose()
        await pool.close()
        await release_database(settings)

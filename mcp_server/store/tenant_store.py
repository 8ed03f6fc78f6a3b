"""`TenantStore`: every read and write of one tenant schema, each call one transaction (the
statements run inside it: `store.documents` for retain and forget, `store.search` for recall)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, Literal, TypeVar

import anyio
import asyncpg

from mcp_server.db.pool import Connection, LateCommits, Waiting, connection_failures_as_unavailable
from mcp_server.errors import Limited, Unavailable
from mcp_server.store import documents, quota
from mcp_server.store import search as searching
from mcp_server.store.provisioning import DEFAULT_EMBEDDING_DIM
from mcp_server.store.quota import QuotaLock
from mcp_server.store.records import BankSummary, NewDocument, RetainedDocument
from mcp_server.store.search import VECTOR_INDEX_FROM, Candidate, CommonWords, SearchRequest
from mcp_server.store.sql import EXTENSION_SCHEMA, SchemaNames
from mcp_server.store.sql.browse import BrowseSQL
from mcp_server.store.sql.catalog import (
    BEGIN,
    BEGIN_READ_ONLY,
    BEGIN_SNAPSHOT,
    COMMIT,
    CUSTOM_PLANS,
    GENERIC_PLANS,
    ROLLBACK,
    TRANSACTION_SETTINGS,
)
from mcp_server.store.sql.memories import MemorySQL
from mcp_server.store.sql.roles import RoleSQL
from mcp_server.store.sql.search import SearchSQL
from mcp_server.tenancy import TenantLimits

logger = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL gave up on the transaction because of another one; running it again may succeed.
CONTENTION = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
CONTENDED = "another call was changing the same memories at that moment; nothing was changed, so retry."


async def _roll_back(conn: Connection) -> None:
    """End a failed transaction, even while the caller is being cancelled.

    If the connection cannot take the statement (it is broken, or still busy with a cancelled
    query), the pool's release rolls it back or closes it instead.
    """
    if conn.is_closed() or not conn.is_in_transaction():
        return
    with anyio.CancelScope(shield=True), suppress(Exception):
        await conn.execute(ROLLBACK)


CHANGED_ELSEWHERE = (
    "this tenant's memory store was just changed by an operator (removed, or its embeddings "
    "recomputed); nothing was changed by this call, so retry it."
)

# `embedder_checked_at` of a store whose vectors must be checked before its next use.
NEVER = float("-inf")
# What a statement raises when the schema, its tables or its role went away after this process
# provisioned it (`bulkhead tenants drop`, perhaps run while other replicas serve it).
MISSING_SCHEMA = (asyncpg.InvalidSchemaNameError, asyncpg.UndefinedTableError)


class TenantStore:
    """The data layer of one schema. Statements are rendered once, at construction.

    `vector_schema` is where pgvector lives, or None when the database has no pgvector: then the
    schema has no embedding column and every search is lexical. `embedding_dim` is the dimension
    of the schema's vectors, which the vector index's expression names. `on_missing` is called when the
    schema turns out to be gone, so that whoever handed this store out provisions it afresh.
    `embedder_checked_at` is when (`time.monotonic()`) the schema's vectors were last found to be
    the embedder's (their dimension, their record); it is cleared when a statement meets vectors of
    another size (another process reembedded them). A bank's memories join the vector index once
    it holds `vector_index_from` of them (`store.search.VECTOR_INDEX_FROM`).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        *,
        vector_schema: str | None = None,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
        on_missing: Callable[[str], None] | None = None,
        waiting: Waiting | None = None,
        late_commits: LateCommits | None = None,
        vector_index_from: int = VECTOR_INDEX_FROM,
    ) -> None:
        self.pool = pool
        self.vector_index_from = vector_index_from
        self.waiting = waiting or Waiting()
        self.late_commits = late_commits or LateCommits()
        self.schema = schema
        self.vector_schema = vector_schema
        self.on_missing = on_missing
        self.embedder_checked_at = NEVER
        names = SchemaNames(schema, vector_schema=vector_schema or EXTENSION_SCHEMA, embedding_dim=embedding_dim)
        self.set_role = RoleSQL(names).set_role
        # One simple-protocol string each: the transaction, its settings and the role in one round trip.
        self.begin = f"{BEGIN}; {TRANSACTION_SETTINGS}; {self.set_role}"
        self.begin_read = f"{BEGIN_READ_ONLY}; {TRANSACTION_SETTINGS}; {self.set_role}"
        self.begin_snapshot = f"{BEGIN_SNAPSHOT}; {TRANSACTION_SETTINGS}; {self.set_role}"
        self.begin_planned = {
            plans: f"{BEGIN_READ_ONLY}; {TRANSACTION_SETTINGS}; {settings}; {self.set_role}"
            for plans, settings in (("custom", CUSTOM_PLANS), ("generic", GENERIC_PLANS))
        }
        self.memory_sql = MemorySQL(names)
        # A retain that checks the storage limits takes the quota's lock as it opens (`store.quota`).
        self.begin_quota: dict[QuotaLock, str] = {
            "shared": f"{self.begin}; {self.memory_sql.quota_lock_shared_opening}",
            "exclusive": f"{self.begin}; {self.memory_sql.quota_lock_opening}",
        }
        # Whether the last check found the schema near its limits: the next small retain then
        # takes the exact check at once, rather than after a shared one cannot tell.
        self.crowded = False
        self.search_sql = SearchSQL(names)
        self.browse_sql = BrowseSQL(names)
        self._common_words = CommonWords(schema, self.search_sql)

    @property
    def has_vectors(self) -> bool:
        """Whether memories here carry embeddings (pgvector is installed)."""
        return self.vector_schema is not None

    @asynccontextmanager
    async def transaction(
        self,
        *,
        read_only: bool = False,
        snapshot: bool = False,
        plans: Literal["custom", "generic"] | None = None,
        quota_lock: QuotaLock | None = None,
    ) -> AsyncIterator[Connection]:
        """The one place a tenant transaction begins: its settings, then the schema's tenant role.

        `SET LOCAL ROLE` lasts until the transaction ends, so PostgreSQL refuses any statement in
        it that names a table of another tenant, whatever the code above does. Every setting is
        `SET LOCAL` too, so a transaction pooler may hand the next transaction any connection.
        `read_only` makes PostgreSQL refuse any write, and lets the caller go on before the
        COMMIT is back (`LateCommits`). `snapshot` makes it read-only and repeatable-read: every
        statement sees one state (export). `plans` (read-only) has every statement planned for its
        values, or once per connection (recall's search, see `CUSTOM_PLANS`, `GENERIC_PLANS`).
        `quota_lock` (a write) takes the schema's quota lock first, in that mode (`store.quota`).
        A lost or refused connection comes out as `Unavailable`, as does a schema changed elsewhere.
        """
        read_only = read_only or snapshot or plans is not None
        if snapshot:
            begin = self.begin_snapshot
        elif plans is not None:
            begin = self.begin_planned[plans]
        elif read_only:
            begin = self.begin_read
        else:
            begin = self.begin if quota_lock is None else self.begin_quota[quota_lock]
        with connection_failures_as_unavailable(), self._changed_elsewhere():
            conn = await self.waiting.connection(self.pool)
            handed_over = False
            try:
                try:
                    try:
                        await conn.execute(begin)
                    except asyncpg.InvalidParameterValueError:
                        # `SET ROLE` to a role that no longer exists: the schema was dropped.
                        self._forget()
                        raise Unavailable(CHANGED_ELSEWHERE) from None
                    yield conn
                except BaseException:
                    await _roll_back(conn)
                    raise
                if read_only:
                    self.late_commits.commit_then_release(self.pool, conn, COMMIT)
                    handed_over = True
                else:
                    await conn.execute(COMMIT)
            finally:
                if not handed_over:
                    await self.pool.release(conn)

    @contextmanager
    def _changed_elsewhere(self) -> Iterator[None]:
        try:
            yield
        except MISSING_SCHEMA as exc:
            self._forget()
            raise Unavailable(CHANGED_ELSEWHERE) from exc
        except asyncpg.DataError as exc:
            # pgvector: "expected N dimensions, not M" or "different vector dimensions N and M".
            if "dimensions" not in str(exc):
                raise
            self.embedder_checked_at = NEVER
            raise Unavailable(CHANGED_ELSEWHERE) from exc

    def _forget(self) -> None:
        self.embedder_checked_at = NEVER
        if self.on_missing is not None:
            self.on_missing(self.schema)

    async def _write(self, work: Callable[[Connection], Awaitable[T]], *, quota_lock: QuotaLock | None = None) -> T:
        """Run `work` in one tenant transaction; once more if PostgreSQL aborted it for contention.

        Writes lock a document's row before its memories, so they should not deadlock; if one
        still loses to another transaction, it is retried once, then refused as `Unavailable`.
        """
        try:
            async with self.transaction(quota_lock=quota_lock) as conn:
                return await work(conn)
        except CONTENTION as exc:
            logger.info("schema %s: transaction aborted by %s; retrying once", self.schema, type(exc).__name__)
        try:
            async with self.transaction(quota_lock=quota_lock) as conn:
                return await work(conn)
        except CONTENTION as exc:
            raise Unavailable(CONTENDED) from exc

    async def _write_checked(
        self,
        work: Callable[[Connection, QuotaLock | None], Awaitable[T]],
        document: NewDocument,
        limits: TenantLimits | None,
        vectors: Awaitable[Any] | None = None,
    ) -> T:
        """`_write` for a retain of `document` under `limits`, holding the quota lock as `work` is
        told: shared when it may be, else (or when that check cannot tell) alone, its `vectors`
        made first so that no other retain waits for the model (`store.quota`)."""
        if not quota.checks_storage(limits):
            return await self._write(lambda conn: work(conn, None))
        if quota.may_share(limits, document) and not self.crowded:
            try:
                return await self._write(lambda conn: work(conn, "shared"), quota_lock="shared")
            except quota.Crowded:
                self.crowded = True
        if vectors is not None:
            await vectors
        return await self._write(lambda conn: work(conn, "exclusive"), quota_lock="exclusive")

    async def bank_id(self, conn: Connection, bank: str) -> int:
        """The id of the bank in this schema; `UnknownBank` if there is none."""
        return await documents.bank_id_of(conn, self.memory_sql, bank)

    async def retain(
        self,
        bank: str,
        document: NewDocument,
        vectors: Sequence[Any] | None = None,
        *,
        limits: TenantLimits | None = None,
    ) -> list[uuid.UUID]:
        """Create the bank if needed and replace the document's memories with `document.chunks`.

        `vectors`, one per chunk, are stored as the chunks' embeddings when the schema has vectors.
        A retain that would take the schema past a storage limit of `limits` is refused as
        `Limited`, inside the same transaction, so it changes nothing.
        """
        ids = [uuid.uuid4() for _ in document.chunks]

        async def work(conn: Connection, lock: QuotaLock | None) -> list[uuid.UUID]:
            bank_id = await documents.ensure_bank(conn, self.memory_sql, bank)
            await self._write_document(conn, bank_id, document, ids, vectors, limits, lock)
            return ids

        return await self._write_checked(work, document, limits)

    async def retain_once(
        self,
        bank: str,
        document: NewDocument,
        vectors: asyncio.Future[Any] | Sequence[Any] | None = None,
        *,
        same_id: bool,
        limits: TenantLimits | None = None,
    ) -> RetainedDocument:
        """`retain`, unless the bank holds exactly this document already (see `find_identical`):
        then nothing is written and that one is returned, `already_stored`. One transaction.

        `vectors` may still be being computed (a future, which a second run awaits again): they
        are awaited once the bank is known to lack the document, so the model's run overlaps
        opening the transaction and the search; before it, when the retain checks the storage
        limits with the lock held alone.
        """
        ids = [uuid.uuid4() for _ in document.chunks]

        async def work(conn: Connection, lock: QuotaLock | None) -> RetainedDocument:
            bank_id, existing = await documents.ensure_bank_finding_identical(
                conn, self.memory_sql, bank, document, same_id=same_id
            )
            if existing is not None:
                return existing
            ready = await vectors if isinstance(vectors, asyncio.Future) else vectors
            await self._write_document(conn, bank_id, document, ids, ready, limits, lock)
            return RetainedDocument(document.document_id, ids)

        pending = vectors if isinstance(vectors, asyncio.Future) else None
        return await self._write_checked(work, document, limits, pending)

    async def _write_document(
        self,
        conn: Connection,
        bank_id: int,
        document: NewDocument,
        ids: list[uuid.UUID],
        vectors: Sequence[Any] | None,
        limits: TenantLimits | None,
        lock: QuotaLock | None = None,
    ) -> None:
        """`documents.write_document`, its vectors kept only where the schema has vectors; notes
        whether the check found the schema crowded (a refusal too), for the next retain."""
        try:
            roomy = await documents.write_document(
                conn,
                self.memory_sql,
                bank_id,
                document,
                ids,
                vectors if self.has_vectors else None,
                limits,
                lock,
                vector_index_from=self.vector_index_from,
            )
        except Limited:
            self.crowded = True
            raise
        if roomy is not None:
            self.crowded = not roomy

    async def search(
        self,
        request: SearchRequest,
        vector: Awaitable[Any] | None = None,
        *,
        plans: Literal["custom", "generic"] | None = None,
    ) -> list[Candidate]:
        """Recall's candidates for `request`: the best by full-text rank and by vector, plus neighbours.

        `vector` is the query's embedding still being computed, when the caller started it
        alongside: it is awaited only once the transaction is open, so the two overlap. A
        filtered search is planned for its values, another by a plan made once (`GENERIC_PLANS`),
        unless `plans` says which (a benchmark's baseline).
        """
        if plans is None:
            plans = "custom" if request.filtered else "generic"
        async with self.transaction(plans=plans) as conn:
            if request.ranked_query is None and request.vector is None and vector is None:
                await self.bank_id(conn, request.bank)
                return []
            hybrid = (request.vector is not None or vector is not None) and self.has_vectors
            found = await searching.search(
                conn, self.search_sql, self._common_words, request, hybrid=hybrid, vector=vector
            )
            if not found:
                # The statement finds the bank by name; only an empty answer asks whether it exists.
                await self.bank_id(conn, request.bank)
            return found

    async def forget_memories(self, bank: str, memory_ids: Sequence[uuid.UUID]) -> int:
        """Delete these memories of the bank (ids elsewhere are ignored); returns how many went."""
        return await self._write(lambda conn: documents.forget_memories(conn, self.memory_sql, bank, memory_ids))

    async def forget_document(self, bank: str, document_id: str) -> int:
        """Delete a document and all its memories; returns how many memories went."""
        return await self._write(lambda conn: documents.forget_document(conn, self.memory_sql, bank, document_id))

    async def find_identical(self, bank: str, document: NewDocument, *, same_id: bool) -> RetainedDocument | None:
        """The document of the bank holding exactly `document`'s chunks and fields, if one does.

        With `same_id`, only the document of that id counts; else any document of the bank does.
        """
        async with self.transaction(read_only=True) as conn:
            bank_id = await conn.fetchval(self.memory_sql.bank_id, bank)
            if bank_id is None:
                return None
            return await documents.identical(conn, self.memory_sql, bank_id, document, same_id=same_id)

    async def forget_bank(self, bank: str) -> int:
        """Delete the bank with every document and memory in it; returns how many memories went."""
        return await self._write(lambda conn: documents.forget_bank(conn, self.memory_sql, bank))

    async def list_banks(self) -> list[BankSummary]:
        """Every bank of the tenant, by name."""
        async with self.transaction(read_only=True) as conn:
            rows = await conn.fetch(self.memory_sql.list_banks)
        return [BankSummary(**dict(row)) for row in rows]

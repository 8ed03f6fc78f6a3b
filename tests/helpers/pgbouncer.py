"""PgBouncer in transaction mode in front of a PostgreSQL: Debian's `pgbouncer`, as a subprocess.

`PgBouncer(pg_url)` writes a configuration that forwards every database to the PostgreSQL of
`pg_url` as its user (`auth_type = any`: the test PostgreSQL trusts local connections), over TCP
or the Unix socket `pg_url` names, listens on a free loopback port, and can be stopped and
started again on that port.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgBouncer:
    """A pgbouncer process in transaction mode in front of the PostgreSQL at `pg_url`."""

    def __init__(self, pg_url: str, *, pool_size: int = 20) -> None:
        binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.binary = binary
        target = urlsplit(pg_url)
        # The embedded PostgreSQL listens on a socket only: postgresql://user@/db?host=/folder
        socket_folder = parse_qs(target.query).get("host", [None])[0]
        host = socket_folder or target.hostname or "127.0.0.1"
        self.user = None
        if os.geteuid() == 0:
            # pgbouncer refuses to run as root: run it as the owner of the socket's folder (who
            # may reach the socket), or as nobody.
            self.user = pwd.getpwuid(os.stat(socket_folder).st_uid).pw_name if socket_folder else "nobody"
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="bulkhead-pgbouncer-"))
        # Readable by the user pgbouncer switches to (it reads its configuration after switching).
        self.folder.chmod(0o755)
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={host} port={target.port or 5432} user={target.username or 'postgres'}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = any\n"
            "pool_mode = transaction\n"
            "max_client_conn = 1000\n"
            f"default_pool_size = {pool_size}\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        config.chmod(0o644)
        self.config = config
        self.log_path = self.folder / "pgbouncer.log"
        self.url = urlunsplit(
            (target.scheme, f"{target.username or 'postgres'}@127.0.0.1:{self.port}", target.path, "", "")
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start pgbouncer and wait until it accepts connections."""
        args = [self.binary, str(self.config)]
        if self.user is not None:
            args[1:1] = ["-u", self.user]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not start listening:\n{self.log()}")

    def stop(self) -> None:
        """Stop pgbouncer at once (SIGINT: its fast shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

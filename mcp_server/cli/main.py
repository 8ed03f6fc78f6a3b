"""The `bulkhead` command: serve, ui, migrate, reembed, tenants, export, import, keys hash, smoke."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

import anyio

from mcp_server import __version__
from mcp_server.cli.subcommands import HELP_WIDTH, load_configuration, subcommand
from mcp_server.cli.tenants import add_tenant_commands
from mcp_server.config import Settings
from mcp_server.errors import BulkheadError, ErrorKind, InvalidInput, Misconfigured, find_error
from mcp_server.tenancy import (
    HASHED_KEY,
    Tenant,
    TenantDirectory,
    hashed_form,
    validate_schema_name,
)

logger = logging.getLogger("mcp_server")

EXIT_CODE: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 2,
    ErrorKind.MISCONFIGURED: 2,
    ErrorKind.UNAVAILABLE: 3,
    ErrorKind.NOT_FOUND: 4,
    ErrorKind.LIMITED: 5,
}
"""The exit code of a command that fails with each error kind (argparse's own usage errors are 2)."""


def serve(args: argparse.Namespace) -> None:
    """Serve MCP over stdio for the tenant of `BULKHEAD_API_KEY`, or over HTTP for every key."""
    # Plain `bulkhead` parses no serve options: it serves stdio.
    stdio = getattr(args, "transport", "stdio") == "stdio"
    try:
        settings, directory = load_configuration()
    except BulkheadError as error:
        if stdio:
            # An agent host shows what its client reports, not stderr: tell the client too.
            from mcp_server.server.stdio import refuse_session

            anyio.run(refuse_session, error)
        raise
    if not stdio:
        serve_http(
            settings, directory, host=args.host or settings.host, port=settings.port if args.port is None else args.port
        )
        return

    from mcp_server.server.stdio import serve_stdio

    anyio.run(serve_stdio, settings, directory)


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


def ui(args: argparse.Namespace) -> None:
    """Serve the dashboard alone on loopback, auth off, for the default schema."""
    from mcp_server.web.serve import listen, serve_dashboard

    settings, directory = load_configuration()
    port = settings.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise InvalidInput(f"--port {port} is not a TCP port (0-65535)")
    try:
        sock = listen(port)
    except OSError as exc:
        raise Misconfigured(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    with sock:
        anyio.run(lambda: serve_dashboard(settings, directory, sock))


def migrate(args: argparse.Namespace) -> None:
    """Apply pending migrations to the chosen schemas."""
    from mcp_server.runtime import ForeignVectors, open_runtime

    settings, directory = load_configuration()
    schemas = _schemas(args, directory)

    async def run() -> None:
        async with open_runtime(settings, directory) as runtime:
            for schema in schemas:
                try:
                    await runtime.store_for(Tenant(schema=schema, label=schema))
                except ForeignVectors as exc:
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

    settings, directory = load_configuration()
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
                    f"schema {schema}: {count} {'memory' if count == 1 else 'memories'} embedded by "
                    f"{embedder.name} ({embedder.dimension} dimensions)",
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
        description=textwrap.fill(
            "Bulkhead: tenant-isolated long-term memory for AI agents over MCP (Model Context Protocol), kept "
            "in PostgreSQL. Settings come from BULKHEAD_* environment variables (see .env.example); without "
            "BULKHEAD_DATABASE_URL an embedded PostgreSQL is used. With no command, serves MCP on stdio.",
            HELP_WIDTH,
        ),
        epilog="examples:\n"
        "  bulkhead smoke                 # try it: retain, recall, reflect and forget once\n"
        "  bulkhead serve --help          # how an agent host runs it\n"
        "  bulkhead serve --transport http --port 8000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bulkhead {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands")

    serve_parser = subcommand(
        commands,
        "serve",
        "serve MCP over stdio (the default) or HTTP",
        "Over stdio, an agent host starts this command itself and speaks MCP on its stdin and stdout "
        "(logs go to stderr); run by hand on a terminal it just waits for a client, so use `bulkhead smoke` "
        "to try it. With a key map (BULKHEAD_TENANT_KEY_MAP or BULKHEAD_TENANT_KEY_FILE), the stdio session "
        "serves the tenant of BULKHEAD_API_KEY; without one, schema BULKHEAD_DEFAULT_SCHEMA. It stops at the "
        "end of stdin or on Ctrl-C, SIGTERM or SIGHUP. Over HTTP, each request's bearer key picks its tenant.",
        "  bulkhead serve                                   # stdio, for an agent host's config\n"
        "  BULKHEAD_API_KEY=... bulkhead serve              # stdio for the tenant of that key\n"
        "  bulkhead serve --transport http --host 127.0.0.1 --port 8000",
    )
    serve_parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default), or http: streamable HTTP at /mcp and SSE at /sse from one process",
    )
    serve_parser.add_argument("--host", help="HTTP address to listen on (default: BULKHEAD_HOST, 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="HTTP port; 0 picks a free one (default: BULKHEAD_PORT, 8000)")
    serve_parser.set_defaults(handler=serve)

    ui_parser = subcommand(
        commands,
        "ui",
        "serve the dashboard alone on 127.0.0.1, auth off, for the default schema",
        "The dashboard at http://127.0.0.1:PORT/ui/ for one person on this machine: no sign-in, the default "
        "schema (BULKHEAD_DEFAULT_SCHEMA), no MCP routes. Ctrl-C stops it.",
        "  bulkhead ui                        # http://127.0.0.1:8000/ui/\n"
        "  bulkhead ui --port 0               # a free port, printed on stderr",
    )
    ui_parser.add_argument("--port", type=int, help="port; 0 picks a free one (default: BULKHEAD_PORT, 8000)")
    ui_parser.set_defaults(handler=ui)

    migrate_parser = subcommand(
        commands,
        "migrate",
        "apply pending database migrations now",
        "Each schema is otherwise migrated on its first use; this does it ahead of time, under the same lock, "
        "so running it while servers run is safe.",
        "  bulkhead migrate --all             # the default schema and every schema in the key map and file\n"
        "  bulkhead migrate --schema acme     # one schema",
    )
    which = migrate_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="the default schema and every tenant schema")
    which.add_argument("--schema", help="one schema by name")
    migrate_parser.set_defaults(handler=migrate)

    reembed_parser = subcommand(
        commands,
        "reembed",
        "recompute every memory's vector with the configured embedder (BULKHEAD_EMBEDDER)",
        "Needed after changing the embedder to one whose vectors have another size; recall keeps finding "
        "memories by their words meanwhile, and an interrupted run is finished by running it again. "
        "A progress bar goes to stderr.",
        "  bulkhead reembed --schema acme\n  BULKHEAD_EMBEDDER=openai BULKHEAD_EMBEDDING_URL=... bulkhead reembed --all",
    )
    which = reembed_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="the default schema and every tenant schema")
    which.add_argument("--schema", help="one schema by name")
    reembed_parser.add_argument("--batch-size", type=int, default=256, help="memories per batch (default 256)")
    reembed_parser.set_defaults(handler=reembed)

    keys_parser = subcommand(
        commands,
        "keys",
        "work with API keys",
        "A key map or key file may hold a key's sha256: form instead of the key itself.",
        "  bulkhead keys hash < acme.key      # prints sha256:<64 hex digits>",
    )
    keys_commands = keys_parser.add_subparsers(dest="keys_command", title="commands")
    keys_parser.set_defaults(handler=lambda _: keys_parser.print_help())
    hash_parser = subcommand(
        keys_commands,
        "hash",
        "print the sha256: form of a key, for the key map or key file",
        "Reads the key from standard input (prompting without echo on a terminal), so it never appears in "
        "the command line or the shell history.",
        "  bulkhead keys hash < acme.key\n  bulkhead keys hash                 # prompts for the key",
    )
    hash_parser.set_defaults(handler=keys_hash)

    smoke_parser = subcommand(
        commands,
        "smoke",
        "check that everything works: retain, recall, reflect and forget once through a real MCP session",
        "Starts `bulkhead serve` over stdio with the current settings and drives it as an agent host would, "
        "printing each step, in a bank of its own that it deletes at the end. Exits 0 when all went well, "
        "else prints one line saying why.",
        "  bulkhead smoke\n  BULKHEAD_DATABASE_URL=postgresql://bulkhead@db.internal/bulkhead bulkhead smoke",
    )
    smoke_parser.set_defaults(handler=smoke)
    add_tenant_commands(commands)
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

"""The operator's commands on tenant schemas: `tenants list`, `tenants drop`, `export`, `import`."""

from __future__ import annotations

import argparse
import sys

import anyio

from mcp_server.cli.subcommands import load_configuration, subcommand
from mcp_server.errors import InvalidInput, NotFound
from mcp_server.tenancy import Tenant, tenant_role_name, validate_schema_name


def tenants_list(args: argparse.Namespace) -> None:
    """Print every Bulkhead schema of the database: banks, memories, bytes, last retain, key."""
    from mcp_server.runtime import open_runtime
    from mcp_server.store.tenants import summaries

    settings, directory = load_configuration()
    mapped = set(directory.schemas)

    async def run() -> None:
        async with open_runtime(settings, directory) as runtime:
            found = await summaries(runtime.stores.pool, runtime.stores.provisioner.vector_schema)
        print(f"{'schema':<32} {'banks':>6} {'memories':>10} {'bytes':>12}  {'last retain':<25}  key")
        for summary in found:
            banks = summary.banks
            last = max((b.last_retained_at for b in banks or () if b.last_retained_at), default=None)
            print(
                f"{summary.schema:<32} {len(banks) if banks is not None else '?':>6} "
                f"{sum(b.memories for b in banks) if banks is not None else '?':>10} {summary.bytes:>12}  "
                f"{last.isoformat(timespec='seconds') if last else '-':<25}  "
                f"{'mapped' if summary.schema in mapped else 'NO KEY'}"
            )

    anyio.run(run)


def export_tenant(args: argparse.Namespace) -> None:
    """Write a schema's banks (or one) to stdout as JSON Lines."""
    from mcp_server.memory.transfer import export_schema
    from mcp_server.runtime import open_runtime
    from mcp_server.store.tenants import bulkhead_schemas

    settings, directory = load_configuration()
    schema = validate_schema_name(args.schema)

    async def run() -> None:
        async with open_runtime(settings, directory) as runtime:
            if schema not in {found.schema for found in await bulkhead_schemas(runtime.stores.pool)}:
                raise NotFound(f"there is no Bulkhead schema {schema} in this database")
            store = await runtime.stores.for_schema(schema)
            count = await export_schema(
                store, sys.stdout, bank=args.bank, vectors=args.vectors, embedder=runtime.embedder
            )
        sys.stdout.flush()
        print(f"schema {schema}: exported {count} memories", file=sys.stderr)

    anyio.run(run)


def import_tenant(args: argparse.Namespace) -> None:
    """Read an export from stdin into a schema, one bank per transaction."""
    from mcp_server.memory.transfer import Importer
    from mcp_server.progress import ProgressBar
    from mcp_server.runtime import open_runtime

    settings, directory = load_configuration()
    schema = validate_schema_name(args.schema)

    async def run() -> None:
        async with open_runtime(settings, directory) as runtime:
            store = await runtime.store_for(Tenant(schema=schema, label=schema))
            importer = Importer(
                store,
                embedder=runtime.embedder,
                bank=args.bank,
                replace=args.replace,
                progress=lambda bank: ProgressBar(f"import {schema}/{bank}"),
            )
            imported = await importer.run(sys.stdin)
        for bank, count in imported:
            print(f"schema {schema}: bank {bank}: imported {count} memories", file=sys.stderr)
        if importer.embedded:
            print(f"schema {schema}: {importer.embedded} memories embedded again", file=sys.stderr)

    anyio.run(run)


def tenants_drop(args: argparse.Namespace) -> None:
    """Drop a schema and its tenant role, once its name is typed again (or `--yes`)."""
    from mcp_server.runtime import open_runtime
    from mcp_server.store.tenants import drop_schema

    settings, directory = load_configuration()
    schema = validate_schema_name(args.schema)
    if not args.yes:
        if sys.stdin.isatty():
            typed = input(f"This deletes every memory of schema {schema}. Type its name to drop it: ")
        else:
            typed = sys.stdin.readline().strip()
        if typed.strip() != schema:
            raise InvalidInput(f"the name typed is not {schema}; nothing was dropped")

    async def run() -> None:
        async with open_runtime(settings, directory) as runtime:
            await drop_schema(runtime.stores.pool, schema, protected=[directory.default.schema])
        print(f"schema {schema}: dropped, with role {tenant_role_name(schema)}", file=sys.stderr)
        if schema in directory.schemas:
            print(f"schema {schema}: a configured key still maps to it; its next call makes it anew", file=sys.stderr)

    anyio.run(run)


def add_tenant_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The operator's commands on tenant schemas: tenants list/drop, export, import."""
    tenants_parser = subcommand(
        commands,
        "tenants",
        "list or drop tenant schemas",
        "Works as the server's own database login, on every Bulkhead schema of the database.",
        "  bulkhead tenants list\n  bulkhead tenants drop --schema acme",
    )
    tenants_commands = tenants_parser.add_subparsers(dest="tenants_command", required=True)
    list_parser = subcommand(
        tenants_commands,
        "list",
        "show every Bulkhead schema: banks, memories, bytes, last retain, and whether a key maps to it",
        "Schemas no configured key maps to are marked NO KEY.",
        "  bulkhead tenants list",
    )
    list_parser.set_defaults(handler=tenants_list)
    drop_parser = subcommand(
        tenants_commands,
        "drop",
        "drop a schema with all its memories, and its tenant role",
        "Asks for the schema's name to be typed again unless --yes is given. Never drops the default "
        "schema or a schema that holds an extension.",
        "  bulkhead tenants drop --schema acme\n  echo acme | bulkhead tenants drop --schema acme",
    )
    drop_parser.add_argument("--schema", required=True, help="the schema to drop")
    drop_parser.add_argument("--yes", action="store_true", help="do not ask for the name to be typed")
    drop_parser.set_defaults(handler=tenants_drop)

    export_parser = subcommand(
        commands,
        "export",
        "write a schema's banks to stdout as JSON Lines",
        "Keeps ids, documents, tags, metadata, context, dates and order, after a header line naming the "
        "format version and the embedder; streamed, so memory stays flat at any size.",
        "  bulkhead export --schema acme > acme.jsonl\n  bulkhead export --schema acme --bank notes --vectors",
    )
    export_parser.add_argument("--schema", required=True, help="the schema to export")
    export_parser.add_argument("--bank", help="only this bank")
    export_parser.add_argument("--vectors", action="store_true", help="include each memory's vector")
    export_parser.set_defaults(handler=export_tenant)

    import_parser = subcommand(
        commands,
        "import",
        "read an export from stdin into a schema, each bank all or nothing",
        "A bank that already holds memories is refused unless --replace. Vectors missing from the export, "
        "or of another dimension than the schema's, are computed with the configured embedder.",
        "  bulkhead import --schema acme < acme.jsonl\n  bulkhead import --schema acme --bank notes --replace < acme.jsonl",
    )
    import_parser.add_argument("--schema", required=True, help="the schema to import into (made if needed)")
    import_parser.add_argument("--bank", help="only this bank of the export")
    import_parser.add_argument(
        "--replace", action="store_true", help="replace a bank that already holds memories (else it is refused)"
    )
    import_parser.set_defaults(handler=import_tenant)

"""Every per-schema statement group, for what must see all of them at once."""

from __future__ import annotations

from mcp_server.store.sql import SchemaNames, StatementGroup
from mcp_server.store.sql.browse import BrowseSQL
from mcp_server.store.sql.memories import MemorySQL
from mcp_server.store.sql.migrations import MigrationSQL
from mcp_server.store.sql.roles import RoleSQL
from mcp_server.store.sql.search import SearchSQL
from mcp_server.store.sql.tenants import TenantSQL
from mcp_server.store.sql.vectors import VectorSQL

SCHEMA_GROUPS: tuple[type[StatementGroup], ...] = (
    RoleSQL,
    MigrationSQL,
    MemorySQL,
    SearchSQL,
    VectorSQL,
    BrowseSQL,
    TenantSQL,
)


def render_all(names: SchemaNames) -> dict[str, str]:
    """Every per-schema statement rendered for `names`, keyed `Group.statement`."""
    return {
        f"{group.__name__}.{name}": text for group in SCHEMA_GROUPS for name, text in group(names).statements().items()
    }

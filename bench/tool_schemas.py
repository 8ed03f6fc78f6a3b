"""What the tools cost a model's context: name + description + input schema, characters / 4.

    python bench/tool_schemas.py

Lists each tool's figure and the total, as a model reads them from `tools/list` (no database
is opened: listing tools needs none).
"""

from __future__ import annotations

import anyio

from mcp_server.server.app import BulkheadServer
from mcp_server.server.binding import FixedTenant
from mcp_server.server.schemas import context_tokens
from mcp_server.tenancy import Tenant


async def main() -> None:
    server = BulkheadServer(None, FixedTenant(Tenant("public", "public")))  # type: ignore[arg-type]
    total = 0.0
    for tool in await server.list_tools():
        cost = context_tokens(tool.name, tool.description or "", tool.input_schema)
        total += cost
        print(f"{tool.name:12} {cost:7.1f} tokens")
    print(f"{'total':12} {total:7.1f} tokens (characters / 4 of name, description and input schema)")
    print("command: python bench/tool_schemas.py")


if __name__ == "__main__":
    anyio.run(main)

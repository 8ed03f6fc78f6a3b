"""The key-scoped dashboard: pages over the runtime, beside the MCP server, never inside it."""

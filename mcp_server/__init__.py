"""Bulkhead: a tenant-isolated long-term memory server for AI agents, over MCP and PostgreSQL."""

__version__ = "0.1.0"

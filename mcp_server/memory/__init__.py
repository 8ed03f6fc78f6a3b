"""What memory means: validation, chunking, ranking, budgets and the answers built from memories."""

from mcp_server.memory.operations import forget, list_banks, recall, retain
from mcp_server.memory.reflection import reflect

__all__ = ["forget", "list_banks", "recall", "reflect", "retain"]

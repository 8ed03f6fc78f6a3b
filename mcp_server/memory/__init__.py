"""What memory means: validation, chunking, ranking, budgets and the answers built from memories."""

from mcp_server.memory.operations import BankNotFoundError, forget, list_banks, recall, retain
from mcp_server.memory.reflect import reflect
from mcp_server.memory.validation import MemoryInputError

__all__ = ["BankNotFoundError", "MemoryInputError", "forget", "list_banks", "recall", "reflect", "retain"]

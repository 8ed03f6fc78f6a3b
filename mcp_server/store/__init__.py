"""The only layer that holds SQL: statement templates, provisioning, and one `TenantStore` per schema."""

from mcp_server.store.provisioning import Provisioner
from mcp_server.store.registry import StoreRegistry
from mcp_server.store.roles import ProvisioningError
from mcp_server.store.tenant_store import (
    BankSummary,
    NewDocument,
    StoredMemory,
    TenantStore,
    UnknownBankError,
)

__all__ = [
    "BankSummary",
    "NewDocument",
    "Provisioner",
    "ProvisioningError",
    "StoreRegistry",
    "StoredMemory",
    "TenantStore",
    "UnknownBankError",
]

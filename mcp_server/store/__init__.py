"""The only layer that holds SQL: statement templates, provisioning, and one `TenantStore` per schema."""

from mcp_server.store.codecs import register_vector_codec
from mcp_server.store.provisioning import Provisioner
from mcp_server.store.registry import StoreRegistry
from mcp_server.store.roles import ProvisioningError
from mcp_server.store.tenant_store import (
    BankSummary,
    Candidate,
    NewDocument,
    StoredMemory,
    TenantStore,
    UnknownBankError,
)
from mcp_server.store.vectors import DimensionMismatchError, VectorRewrite, stored_dimension

__all__ = [
    "BankSummary",
    "Candidate",
    "DimensionMismatchError",
    "NewDocument",
    "Provisioner",
    "ProvisioningError",
    "StoreRegistry",
    "StoredMemory",
    "TenantStore",
    "UnknownBankError",
    "VectorRewrite",
    "register_vector_codec",
    "stored_dimension",
]

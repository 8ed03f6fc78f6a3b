"""The only layer that holds SQL (in `sql/`): provisioning, and one `TenantStore` per schema."""

from mcp_server.store.codecs import register_vector_codec
from mcp_server.store.provisioning import Provisioner
from mcp_server.store.records import BankSummary, NewDocument, UnknownBank
from mcp_server.store.registry import StoreRegistry
from mcp_server.store.search import Candidate, SearchRequest, StoredMemory
from mcp_server.store.tenant_store import TenantStore
from mcp_server.store.vectors import VectorRewrite, recorded_embedder, stored_dimension

__all__ = [
    "BankSummary",
    "Candidate",
    "NewDocument",
    "Provisioner",
    "SearchRequest",
    "StoreRegistry",
    "StoredMemory",
    "TenantStore",
    "UnknownBank",
    "VectorRewrite",
    "recorded_embedder",
    "register_vector_codec",
    "stored_dimension",
]

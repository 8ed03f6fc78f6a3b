"""Who a caller is: API keys, their digests, and the schema each one maps to.

Knows nothing of MCP or SQL. Keys are turned into SHA-256 digests as soon as they are read and
only digests are kept; messages name an entry by its position, never by its key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mcp_server.config import Settings
from mcp_server.errors import InvalidInput, Misconfigured

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# PostgreSQL truncates identifiers to 63 bytes; schema and role names here are ASCII.
MAX_IDENTIFIER_BYTES = 63
ROLE_PREFIX = "bulkhead_t_"
HASHED_ROLE_PREFIX = "bulkhead_th_"
HASHED_KEY = re.compile(r"sha256:([0-9a-fA-F]{64})")
EXTENSION_SCHEMA = "bulkhead_ext"
"""Where Bulkhead installs pgvector, shared by every tenant: never a tenant's own schema."""
# Schemas of Bulkhead's own: the shared vector extension, and the dashboard's sessions.
RESERVED_SCHEMAS = frozenset({EXTENSION_SCHEMA, "bulkhead_web"})


@dataclass(frozen=True, slots=True)
class Tenant:
    """The tenant a session is bound to: its PostgreSQL schema and a label safe to log."""

    schema: str
    label: str


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """What one tenant may use; 0 means no limit."""

    max_memories: int = 0
    max_bytes: int = 0
    """Bytes of memory text stored, over all the tenant's banks."""
    calls_per_second: float = 0.0
    burst: int = 0
    """Tool calls allowed at once above the steady rate (the token bucket's size)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantLimits:
        """The defaults every tenant has unless its key file line says otherwise."""
        return cls(
            max_memories=settings.tenant_max_memories,
            max_bytes=settings.tenant_max_bytes,
            calls_per_second=settings.tenant_calls_per_second,
            burst=settings.tenant_call_burst,
        )


LIMIT_NAMES = {"max_memories": int, "max_bytes": int, "calls_per_second": float, "burst": int}
"""The `name=value` overrides a key file line may carry after `KEY SCHEMA`."""


def validate_schema_name(name: str) -> str:
    """Return `name` if it is an allowed tenant schema name, else raise `InvalidInput`."""
    if not SCHEMA_NAME.fullmatch(name):
        raise InvalidInput(
            f"schema name {name[:80]!r} is not allowed: use 1-63 characters of lowercase a-z, 0-9 "
            "and _, not starting with a digit"
        )
    if name.startswith("pg_") or name == "information_schema":
        raise InvalidInput(f"schema name {name!r} is reserved by PostgreSQL")
    if name == EXTENSION_SCHEMA:
        raise InvalidInput(f"schema name {name!r} is reserved for the vector extension every tenant shares")
    if name in RESERVED_SCHEMAS:
        raise InvalidInput(f"schema name {name!r} is reserved by Bulkhead")
    return name


def tenant_role_name(schema: str) -> str:
    """The NOLOGIN role that owns `schema` and runs its transactions.

    `bulkhead_t_<schema>` when that fits in 63 bytes (schemas of up to 52 characters); longer
    schemas get `bulkhead_th_<first 34 characters>_<16 hex digits of SHA-256(schema)>`. The two
    prefixes differ at their 11th character, so a short name never equals a hashed one.
    """
    validate_schema_name(schema)
    role = ROLE_PREFIX + schema
    if len(role) <= MAX_IDENTIFIER_BYTES:
        return role
    tail = "_" + hashlib.sha256(schema.encode("ascii")).hexdigest()[:16]
    return HASHED_ROLE_PREFIX + schema[: MAX_IDENTIFIER_BYTES - len(HASHED_ROLE_PREFIX) - len(tail)] + tail


def digest_key(key: str) -> bytes:
    """The SHA-256 digest under which a key is held."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_binding(digest: bytes, nonce: bytes) -> bytes:
    """A value tying something (a dashboard session, by its random `nonce`) to one key's digest.

    Without the nonce it says nothing about the key, so it may be stored where a key may not.
    """
    return hmac.new(digest, b"bulkhead-key-binding:" + nonce, hashlib.sha256).digest()


def hashed_form(key: str) -> str:
    """The `sha256:<hex>` form of a key, for key maps and key files."""
    return "sha256:" + digest_key(key).hex()


def _key_digest(key: str, where: str) -> bytes:
    if not key:
        raise Misconfigured(f"{where}: the key is empty")
    hashed = HASHED_KEY.fullmatch(key)
    if hashed:
        return bytes.fromhex(hashed.group(1))
    if key.lower().startswith("sha256:"):
        raise Misconfigured(f"{where}: a hashed key must be 'sha256:' followed by 64 hex digits")
    return digest_key(key)


def _schema(name: str, where: str) -> str:
    try:
        return validate_schema_name(name)
    except InvalidInput as exc:
        raise Misconfigured(f"{where}: {exc.message}") from None


def parse_key_map(text: str) -> list[tuple[bytes, str]]:
    """Parse `key_a:schema_a;key_b:schema_b` (keys may be `sha256:<hex>`) into (digest, schema)."""
    pairs: list[tuple[bytes, str]] = []
    for number, raw in enumerate(text.split(";"), start=1):
        entry = raw.strip()
        if not entry:
            continue
        where = f"BULKHEAD_TENANT_KEY_MAP entry {number}"
        hashed = re.match(r"sha256:[0-9a-fA-F]{64}:", entry)
        if hashed:
            key, schema = entry[: hashed.end() - 1], entry[hashed.end() :]
        elif entry.lower().startswith("sha256:"):
            raise Misconfigured(f"{where}: a hashed key must be 'sha256:' followed by 64 hex digits, then ':SCHEMA'")
        elif ":" in entry:
            key, schema = entry.split(":", 1)
        else:
            raise Misconfigured(f"{where}: expected KEY:SCHEMA, found no ':'")
        pairs.append((_key_digest(key.strip(), where), _schema(schema.strip(), where)))
    return pairs


def _limit_overrides(fields: list[str], where: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in fields:
        name, sep, raw = item.partition("=")
        kind = LIMIT_NAMES.get(name)
        if not sep or kind is None:
            known = ", ".join(f"{n}=N" for n in LIMIT_NAMES)
            raise Misconfigured(f"{where}: after 'KEY SCHEMA' only limits may follow ({known}), not {name[:40]!r}")
        try:
            value = kind(raw)
        except ValueError:
            raise Misconfigured(f"{where}: {name} must be a number, not {raw[:40]!r}") from None
        if value < 0 or value != value:
            raise Misconfigured(f"{where}: {name} must be 0 (no limit) or more")
        overrides[name] = value
    return overrides


def read_key_file(path: Path) -> list[tuple[bytes, str, dict[str, Any]]]:
    """Every entry of a key file: `KEY SCHEMA [name=value ...]` per line, `#` comments.

    The optional `name=value` pairs override that tenant's limits (`LIMIT_NAMES`).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise Misconfigured(f"BULKHEAD_TENANT_KEY_FILE: cannot read {path}: {exc.strerror}") from None
    entries: list[tuple[bytes, str, dict[str, Any]]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"BULKHEAD_TENANT_KEY_FILE line {number}"
        fields = line.split()
        if len(fields) < 2:
            raise Misconfigured(f"{where}: expected 'KEY SCHEMA' separated by whitespace")
        digest, schema = _key_digest(fields[0], where), _schema(fields[1], where)
        entries.append((digest, schema, _limit_overrides(fields[2:], where)))
    return entries


def parse_key_file(path: Path) -> list[tuple[bytes, str]]:
    """A key file's (digest, schema) pairs; see `read_key_file`."""
    return [(digest, schema) for digest, schema, _ in read_key_file(path)]


def schema_limits(defaults: TenantLimits, entries: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, TenantLimits]:
    """Each schema's limits: the defaults, overridden by its entries, which must agree."""
    given: dict[str, dict[str, Any]] = {}
    for number, (schema, overrides) in enumerate(entries, start=1):
        merged = given.setdefault(schema, {})
        for name, value in overrides.items():
            if merged.setdefault(name, value) != value:
                raise Misconfigured(
                    f"tenant key entry {number} gives schema {schema} another {name} than an earlier one"
                )
    return {schema: replace(defaults, **overrides) for schema, overrides in given.items()}


class KeyMap:
    """Resolves an API key to its tenant by comparing digests in constant time."""

    def __init__(self, pairs: Iterable[tuple[bytes, str]]) -> None:
        self._entries: list[tuple[bytes, Tenant]] = []
        seen: set[bytes] = set()
        for number, (digest, schema) in enumerate(pairs, start=1):
            if digest in seen:
                raise Misconfigured(f"tenant key entry {number} repeats a key that is already mapped")
            seen.add(digest)
            self._entries.append((digest, Tenant(schema=schema, label=schema)))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def schemas(self) -> list[str]:
        """Every schema some key maps to, each once, in the order first given."""
        return list(dict.fromkeys(tenant.schema for _, tenant in self._entries))

    def resolve(self, key: str | None) -> Tenant | None:
        """The tenant of `key`, or None. Every entry is compared, so timing says nothing."""
        if not key:
            return None
        probe = digest_key(key)
        found: Tenant | None = None
        for digest, tenant in self._entries:
            if hmac.compare_digest(digest, probe):
                found = tenant
        return found

    def resolve_binding(self, binding: bytes, nonce: bytes) -> Tenant | None:
        """The tenant of the key that `binding` was made from with `nonce`, if that key is still mapped."""
        found: Tenant | None = None
        for digest, tenant in self._entries:
            if hmac.compare_digest(key_binding(digest, nonce), binding):
                found = tenant
        return found


@dataclass(frozen=True)
class TenantDirectory:
    """How sessions find their tenant: through the key map when auth is on, else the default."""

    auth_enabled: bool
    default: Tenant
    keys: KeyMap
    default_limits: TenantLimits = TenantLimits()
    limits: dict[str, TenantLimits] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantDirectory:
        """Build the directory, validating every entry; raises `Misconfigured` on the first bad one."""
        default_schema = _schema(settings.default_schema, "BULKHEAD_DEFAULT_SCHEMA")
        entries: list[tuple[bytes, str, dict[str, Any]]] = []
        if settings.tenant_key_map is not None:
            entries += [(d, s, {}) for d, s in parse_key_map(settings.tenant_key_map.get_secret_value())]
        if settings.tenant_key_file is not None:
            entries += read_key_file(settings.tenant_key_file)
        keys = KeyMap((digest, schema) for digest, schema, _ in entries)
        defaults = TenantLimits.from_settings(settings)
        if settings.auth_configured and not settings.auth_disabled and not len(keys):
            raise Misconfigured("auth is on but the key map and key file hold no keys")
        return cls(
            auth_enabled=settings.auth_enabled,
            default=Tenant(schema=default_schema, label=default_schema),
            keys=keys,
            default_limits=defaults,
            limits=schema_limits(defaults, ((schema, overrides) for _, schema, overrides in entries)),
        )

    @property
    def schemas(self) -> list[str]:
        """The default schema and every tenant schema, each once: what `migrate --all` provisions."""
        return list(dict.fromkeys([self.default.schema, *self.keys.schemas]))

    def without_auth(self) -> TenantDirectory:
        """This directory with auth off: every caller gets the default tenant."""
        return TenantDirectory(auth_enabled=False, default=self.default, keys=KeyMap(()))

    def limits_for(self, schema: str) -> TenantLimits:
        """What the tenant of `schema` may use."""
        return self.limits.get(schema, self.default_limits)

    def resolve(self, key: str | None) -> Tenant | None:
        """The tenant for a request carrying `key`; with auth off, always the default tenant."""
        if not self.auth_enabled:
            return self.default
        return self.keys.resolve(key)

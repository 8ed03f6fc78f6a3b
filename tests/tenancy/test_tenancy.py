"""Unit tests for key maps, key files, schema names, tenant role names, and resolving keys to tenants."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import clear_bulkhead_env

from mcp_server.config import Settings
from mcp_server.errors import InvalidInput, Misconfigured
from mcp_server.tenancy import (
    KeyMap,
    Tenant,
    TenantDirectory,
    hashed_form,
    parse_key_file,
    parse_key_map,
    tenant_role_name,
    validate_schema_name,
)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@pytest.mark.parametrize("name", ["public", "tenant_a", "_x", "a" * 63, "t1_2_3"])
def test_schema_names_accepted(name: str) -> None:
    assert validate_schema_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "Tenant_A",  # mixed case
        "TENANT",
        "a" * 64,  # 64 bytes
        "1tenant",
        "",
        "tenant-a",
        "tenant a",
        " tenant",
        'tenant"a',
        "ténant",
        "pg_catalog",
        "pg_toast",
        "pg_anything",
        "information_schema",
    ],
)
def test_schema_names_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_schema_name(name)


def test_key_map_first_colon_rule() -> None:
    # "key:with:colons:tenant_b" splits on its first colon, so the schema is invalid.
    with pytest.raises(Misconfigured, match="entry 1"):
        parse_key_map("key:with:colons:tenant_b")
    assert parse_key_map(" key-a : tenant_a ; key-b:tenant_b;") == [
        (digest("key-a"), "tenant_a"),
        (digest("key-b"), "tenant_b"),
    ]


def test_key_map_hashed_keys() -> None:
    hexdigest = hashlib.sha256(b"secret").hexdigest()
    assert parse_key_map(f"sha256:{hexdigest}:tenant_a") == [(digest("secret"), "tenant_a")]
    assert parse_key_map(f"sha256:{hexdigest.upper()}:tenant_a") == [(digest("secret"), "tenant_a")]
    with pytest.raises(Misconfigured, match="64 hex digits"):
        parse_key_map("sha256:abc:tenant_a")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SeCrEtKeY", "found no ':'"),
        (":tenant_a", "key is empty"),
        ("   :tenant_a", "key is empty"),
        ("SeCrEtKeY:", "schema name"),
        ("SeCrEtKeY:Tenant_A", "schema name"),
        ("SeCrEtKeY:pg_catalog", "reserved"),
        ("SeCrEtKeY:" + "a" * 64, "schema name"),
        ("ok:tenant_a;SeCrEtKeY", "entry 2"),
    ],
)
def test_key_map_errors_name_the_entry_not_the_key(text: str, problem: str) -> None:
    with pytest.raises(Misconfigured, match=problem) as caught:
        parse_key_map(text)
    assert "SeCrEtKeY" not in str(caught.value)
    assert "entry" in str(caught.value)


def test_key_file(tmp_path: Path) -> None:
    hexdigest = hashlib.sha256(b"k2").hexdigest()
    path = tmp_path / "keys"
    path.write_text(f"# comment\n\n  k1   tenant_a\nsha256:{hexdigest} tenant_b\n")
    assert parse_key_file(path) == [(digest("k1"), "tenant_a"), (digest("k2"), "tenant_b")]
    path.write_text("k1 tenant_a extra\n")
    with pytest.raises(Misconfigured, match="line 1"):
        parse_key_file(path)
    with pytest.raises(Misconfigured, match="cannot read"):
        parse_key_file(tmp_path / "missing")


def test_duplicate_keys_refused_but_several_keys_per_schema_allowed() -> None:
    keys = KeyMap(parse_key_map("old:tenant_a;new:tenant_a;other:tenant_b"))
    assert keys.resolve("old") == keys.resolve("new") == Tenant("tenant_a", "tenant_a")
    assert keys.schemas == ["tenant_a", "tenant_b"]
    with pytest.raises(Misconfigured, match="repeats a key"):
        KeyMap(parse_key_map("same:tenant_a;same:tenant_b"))
    hexdigest = hashlib.sha256(b"same").hexdigest()
    with pytest.raises(Misconfigured, match="repeats a key"):
        KeyMap(parse_key_map(f"same:tenant_a;sha256:{hexdigest}:tenant_b"))


@pytest.mark.parametrize("probe", ["", None, "key-", "key-a ", " key-a", "KEY-A", "key-aa", "ey-a", "key"])
def test_only_the_exact_key_resolves(probe: str | None) -> None:
    keys = KeyMap(parse_key_map("key-a:tenant_a"))
    assert keys.resolve("key-a") == Tenant("tenant_a", "tenant_a")
    assert keys.resolve(probe) is None


def test_keys_are_held_only_as_digests() -> None:
    keys = KeyMap(parse_key_map("plain-secret-key:tenant_a"))
    assert "plain-secret-key" not in repr(vars(keys))
    assert hashed_form("plain-secret-key") == "sha256:" + hashlib.sha256(b"plain-secret-key").hexdigest()


def test_directory_auth_on_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_bulkhead_env(monkeypatch)
    on = TenantDirectory.from_settings(Settings(tenant_key_map="k:tenant_a", _env_file=None))
    assert on.auth_enabled and on.resolve("k") == Tenant("tenant_a", "tenant_a") and on.resolve("x") is None
    off = TenantDirectory.from_settings(Settings(tenant_key_map="k:tenant_a", auth_disabled=True, _env_file=None))
    assert not off.auth_enabled and off.resolve(None) == Tenant("public", "public") == off.resolve("k")
    none = TenantDirectory.from_settings(Settings(_env_file=None))
    assert not none.auth_enabled and none.resolve("anything").schema == "public"
    assert on.schemas == ["public", "tenant_a"]
    with pytest.raises(Misconfigured, match="BULKHEAD_DEFAULT_SCHEMA"):
        TenantDirectory.from_settings(Settings(default_schema="Public", _env_file=None))
    with pytest.raises(Misconfigured, match="hold no keys"):
        TenantDirectory.from_settings(Settings(tenant_key_map=" ; ", _env_file=None))


def test_role_names_follow_the_documented_rule() -> None:
    assert tenant_role_name("acme") == "bulkhead_t_acme"
    assert tenant_role_name("a" * 52) == "bulkhead_t_" + "a" * 52
    long_a, long_b = "a" * 53, "a" * 62 + "b"
    assert len(tenant_role_name(long_a)) == len(tenant_role_name("z" * 63)) == 63
    assert tenant_role_name(long_a).startswith("bulkhead_th_" + "a" * 34 + "_")
    assert tenant_role_name(long_a) != tenant_role_name(long_b)
    # A short schema cannot be named so that its role equals a hashed one.
    hashed_tail = tenant_role_name(long_a).removeprefix("bulkhead_t")
    assert tenant_role_name(hashed_tail.lstrip("_")) != tenant_role_name(long_a)
    with pytest.raises(InvalidInput):
        tenant_role_name('acme"; DROP ROLE postgres; --')

"""Start-up: settings that stop the server with one line, and stdio key resolution."""

from __future__ import annotations

import subprocess

import pytest
from helpers import REPO, clear_bulkhead_env, run_bulkhead, server_env, unique

from mcp_server.config import MIB, load_settings
from mcp_server.errors import Misconfigured

SECRET = "sk-live-Zq8vN3pLr5tY"


def run_serve(env: dict[str, str], args: tuple[str, ...] = ("serve",)) -> subprocess.CompletedProcess[str]:
    """Start `bulkhead serve` with stdin closed; a server that gets past start-up exits 0 on EOF."""
    return run_bulkhead(*args, env=env, timeout=60)


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_bulkhead_env(monkeypatch)
    settings = load_settings(_env_file=None)
    assert settings.default_schema == "public"
    assert settings.max_content_bytes == MIB
    assert settings.database_url is None
    assert settings.data_dir.name == "bulkhead"
    assert not settings.auth_enabled


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BULKHEAD_MAX_CONTENT_BYTES", "lots", "BULKHEAD_MAX_CONTENT_BYTES: Input should be a valid integer"),
        ("BULKHEAD_MAX_CONTENT_BYTES", "0", "BULKHEAD_MAX_CONTENT_BYTES: Input should be greater than or equal to 1"),
        ("BULKHEAD_POOL_MAX_SIZE", "-3", "BULKHEAD_POOL_MAX_SIZE"),
        ("BULKHEAD_AUTH_DISABLED", "perhaps", "BULKHEAD_AUTH_DISABLED"),
        ("BULKHEAD_LOG_LEVEL", "LOUD", "BULKHEAD_LOG_LEVEL: must be one of"),
    ],
)
def test_bad_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    clear_bulkhead_env(monkeypatch)
    monkeypatch.setenv(variable, value)
    with pytest.raises(Misconfigured) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message and value not in message.split(":", 1)[1]


def test_bad_setting_stops_serve_with_one_line() -> None:
    result = run_serve(server_env(None, pool_min_size="20", pool_max_size="5"))
    assert result.returncode == 2
    assert result.stderr.strip() == "bulkhead: BULKHEAD_POOL_MIN_SIZE: must not exceed BULKHEAD_POOL_MAX_SIZE"


def test_bad_key_map_stops_serve_without_echoing_keys() -> None:
    result = run_serve(server_env(None, tenant_key_map=f"{SECRET}:Tenant_A"))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "entry 1" in line and "Tenant_A" in line and SECRET not in line


@pytest.mark.parametrize(
    ("api_key", "reason"),
    [
        (None, "BULKHEAD_API_KEY is not set"),
        ("", "BULKHEAD_API_KEY is not set"),
        (SECRET + "x", "BULKHEAD_API_KEY is not a known key"),
        (SECRET[:-1], "BULKHEAD_API_KEY is not a known key"),
        (SECRET.upper(), "BULKHEAD_API_KEY is not a known key"),
        (f" {SECRET} ", "BULKHEAD_API_KEY is not a known key"),
    ],
)
def test_stdio_refuses_a_missing_or_unknown_key(pg_url: str, api_key: str | None, reason: str) -> None:
    settings = {"tenant_key_map": f"{SECRET}:{unique('t')}"}
    if api_key is not None:
        settings["api_key"] = api_key
    result = run_serve(server_env(pg_url, **settings))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert reason in line
    assert SECRET not in line and SECRET.upper() not in line and SECRET[:-1] not in line
    assert result.stdout == ""


def test_stdio_with_a_valid_key_starts_and_exits_cleanly_on_eof(pg_url: str) -> None:
    env = server_env(pg_url, tenant_key_map=f"{SECRET}:{unique('t')}", api_key=SECRET, log_level="INFO")
    result = run_serve(env, ("serve", "--transport", "stdio"))
    assert result.returncode == 0, result.stderr
    assert "serving stdio" in result.stderr
    assert SECRET not in result.stderr and result.stdout == ""


def test_plain_bulkhead_serves_stdio(pg_url: str) -> None:
    result = run_serve(server_env(pg_url, default_schema=unique("t"), log_level="INFO"), ())
    assert result.returncode == 0, result.stderr
    assert "serving stdio" in result.stderr and result.stdout == ""


def test_unreachable_database_is_one_line() -> None:
    result = run_serve(server_env("postgresql://nobody:hunter2@127.0.0.1:1/none"))
    assert result.returncode == 3
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("bulkhead: cannot connect to PostgreSQL") and "hunter2" not in line


def test_env_example_and_readme_list_every_setting() -> None:
    from mcp_server.config import Settings

    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    for field in Settings.model_fields:
        variable = f"BULKHEAD_{field.upper()}"
        assert f"# {variable}=" in example, variable
        assert variable in readme, variable

"""Start-up: settings that stop the server with one line, and stdio key resolution."""

from __future__ import annotations

import subprocess

import pytest
from helpers import run_bulkhead, server_env, unique

SECRET = "sk-live-Zq8vN3pLr5tY"


def run_serve(env: dict[str, str], args: tuple[str, ...] = ("serve",)) -> subprocess.CompletedProcess[str]:
    """Start `bulkhead serve` with stdin closed; a server that gets past start-up exits 0 on EOF."""
    return run_bulkhead(*args, env=env, timeout=60)


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

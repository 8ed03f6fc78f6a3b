"""What a new user sees when start-up fails: one line naming the setting, a distinct exit code,
and, over stdio, the same line in what the MCP client (an agent host, the Inspector) reports.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from helpers import REPO, run_bulkhead, server_env, stdio_params, unique
from mcp import Client
from mcp.client.stdio import stdio_client as raw_stdio_client

pytestmark = pytest.mark.anyio

SECRET = "sk-first-run-Hq7Wx2"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}
KEY_CASES = [
    ({"tenant_key_map": f"{SECRET}:acme"}, "auth is on and BULKHEAD_API_KEY is not set"),
    ({"tenant_key_map": f"{SECRET}:acme", "api_key": SECRET + "x"}, "BULKHEAD_API_KEY is not a known key"),
    ({"api_key": SECRET}, "BULKHEAD_API_KEY is set but no key map is"),
]
# Any start-up failure reaches the client the same way, with its own exit code.
OTHER_CASES = [
    ({"database_url": "mysql://root@localhost/bulkhead"}, "must be a postgresql:// URL", 2),
    ({"database_url": "postgresql://bulkhead@127.0.0.1:1/bulkhead"}, "the connection was refused", 3),
]


def with_user(url: str, user: str) -> str:
    """`url` logging in as `user` (no password)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bulkhead: ")
    return lines[0]


@pytest.mark.parametrize(("settings", "reason", "code"), [(*case, 2) for case in KEY_CASES] + OTHER_CASES)
def test_a_start_up_failure_is_the_answer_to_initialize_then_a_non_zero_exit(
    pg_url: str, settings: dict[str, str], reason: str, code: int
) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "mcp_server", "serve"],
        cwd=REPO,
        env=server_env(pg_url, **settings),
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == code
    line = one_line(process)
    assert reason in line and SECRET not in line
    reply = json.loads(process.stdout)
    assert reply["id"] == 7 and "result" not in reply
    assert reply["error"]["message"] == line.removeprefix("bulkhead: ")
    assert SECRET not in process.stdout


@pytest.mark.parametrize(("settings", "reason"), KEY_CASES)
async def test_the_sdk_client_reports_the_reason(pg_url: str, settings: dict[str, str], reason: str) -> None:
    with open("/dev/null", "w") as quiet, pytest.raises(BaseException) as caught:
        async with Client(raw_stdio_client(stdio_params(server_env(pg_url, **settings)), errlog=quiet)) as client:
            await client.list_tools()
    reported = repr(caught.value) + "".join(repr(e) for e in getattr(caught.value, "exceptions", ()))
    assert reason in reported and SECRET not in reported


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")
def test_the_inspector_reports_the_reason(pg_url: str) -> None:
    from helpers.inspector import BULKHEAD, inspector

    env = server_env(pg_url, tenant_key_map=f"{SECRET}:{unique('t')}", api_key="not-the-key")
    run = inspector(env, [BULKHEAD, "serve"], "--method", "tools/list")
    assert run.returncode != 0
    assert "BULKHEAD_API_KEY is not a known key" in run.stdout + run.stderr
    assert "Connection closed" not in run.stdout + run.stderr


def test_a_terminal_session_with_a_bad_key_is_refused_at_once() -> None:
    # Without a client (stdin at its end) there is nothing to answer: one line and the exit code.
    result = run_bulkhead("serve", env=server_env(None, api_key=SECRET), timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert "BULKHEAD_API_KEY is set but no key map is" in one_line(result)


def database_failures(pg_url: str) -> list[tuple[str, int, str]]:
    return [
        ("mysql://root@localhost/bulkhead", 2, "BULKHEAD_DATABASE_URL: must be a postgresql:// URL"),
        ("localhost:5432/bulkhead", 2, "BULKHEAD_DATABASE_URL: must be a postgresql:// URL"),
        ("postgresql://bulkhead:hunter2@127.0.0.1:1/bulkhead", 3, "the connection was refused"),
        ("postgresql://bulkhead:hunter2@no-such-host.invalid/bulkhead", 2, "no host is called no-such-host.invalid"),
        ("postgresql://bulkhead:hunter2@localhost:99999/bulkhead", 2, "BULKHEAD_DATABASE_URL cannot be read"),
        (with_user(pg_url, "nobody_" + unique("u")), 2, "refused the login of user"),
        (with_database(pg_url, unique("nodb")), 2, "it has no database"),
    ]


def test_each_database_failure_is_one_line_naming_the_setting(pg_url: str) -> None:
    for url, code, reason in database_failures(pg_url):
        result = run_bulkhead("serve", env=server_env(url), timeout=120)
        line = one_line(result)
        assert result.returncode == code, (url, line)
        assert reason in line, (url, line)
        assert "BULKHEAD_DATABASE_URL" in line and "hunter2" not in line
        assert "to use the embedded PostgreSQL" in line, line


async def test_a_login_without_the_needed_privileges_stops_start_up(pg_url: str) -> None:
    login = unique("weak")
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f'CREATE ROLE "{login}" LOGIN NOCREATEROLE')
        # (At WARNING, the log would also say that this login cannot use pgvector.)
        env = server_env(with_user(pg_url, login), default_schema=unique("w"), log_level="ERROR")
        result = run_bulkhead("serve", env=env)
    finally:
        await admin.execute(f'DROP ROLE "{login}"')
        await admin.close()
    assert result.returncode == 2
    line = one_line(result)
    print(line)
    assert "CREATE" in line or "GRANT" in line, line


async def test_smoke_leaves_nothing_behind(pg_url: str) -> None:
    schema = unique("smoke")
    result = run_bulkhead("smoke", env=server_env(pg_url, default_schema=schema))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("smoke: ok") and result.stderr == ""
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetch(f'SELECT name FROM "{schema}".banks') == []
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".memories') == 0
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("settings", "code", "reason"),
    [
        ({"tenant_key_map": f"{SECRET}:acme"}, 2, "BULKHEAD_API_KEY is not set"),
        ({"database_url": "postgresql://bulkhead@127.0.0.1:1/bulkhead"}, 3, "the connection was refused"),
    ],
)
def test_smoke_fails_in_one_line(pg_url: str, settings: dict[str, str], code: int, reason: str) -> None:
    result = run_bulkhead("smoke", env=server_env(pg_url, **settings))
    assert result.returncode == code
    assert reason in one_line(result)


@pytest.mark.parametrize(
    "command", [(), ("serve",), ("migrate",), ("reembed",), ("keys",), ("keys", "hash"), ("smoke",)]
)
def test_every_help_says_what_it_does_and_shows_an_example(command: tuple[str, ...]) -> None:
    result = run_bulkhead(*command, "--help", env=server_env(None))
    assert result.returncode == 0, result.stderr
    usage, description, *_ = result.stdout.split("\n\n")
    assert usage.startswith("usage: bulkhead") and description.strip().endswith(".")
    assert "examples:\n  bulkhead" in result.stdout or "examples:\n  BULKHEAD_" in result.stdout


def test_serve_help_covers_keys_stdin_and_stopping() -> None:
    text = " ".join(run_bulkhead("serve", "--help", env=server_env(None)).stdout.split())
    for words in ("BULKHEAD_API_KEY", "stdin", "agent host", "bulkhead smoke", "Ctrl-C", "SIGTERM"):
        assert words in text, words


def test_keys_alone_prints_its_help() -> None:
    result = run_bulkhead("keys", env=server_env(None))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: bulkhead keys") and "hash" in result.stdout

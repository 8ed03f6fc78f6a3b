"""`bulkhead keys hash`, and the one log line each tool call leaves: never content, never a key."""

from __future__ import annotations

import re
import secrets
import subprocess
import tempfile

import pytest
from helpers import call, call_error, run_bulkhead, server_env, stdio_client, unique

from mcp_server.tenancy import hashed_form

pytestmark = pytest.mark.anyio

CALL_LINE = re.compile(
    r"INFO mcp_server\.calls: tool call tenant=(?P<tenant>\S+) tool=(?P<tool>\S+) bank=(?P<bank>\S+)"
    r" outcome=(?P<outcome>ok|rejected|limited|unavailable|error) duration_ms=\d+\.\d"
)


def keys_hash(stdin: str) -> subprocess.CompletedProcess[str]:
    return run_bulkhead("keys", "hash", env=server_env(None), stdin=stdin)


def test_keys_hash_reads_the_key_from_stdin_and_prints_its_sha256_form() -> None:
    key = secrets.token_urlsafe(24)
    done = keys_hash(key + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == hashed_form(key) + "\n"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", done.stdout)
    assert key not in done.stderr
    for bad, reason in ((" " + key, "whitespace"), ("", "no key given"), (hashed_form(key), "already a hashed key")):
        refused = keys_hash(bad + "\n")
        assert refused.returncode == 2 and refused.stdout == ""
        assert reason in refused.stderr and refused.stderr.count("\n") == 1
        assert key not in refused.stderr


async def test_each_tool_call_leaves_one_log_line_without_content_or_key(pg_url: str) -> None:
    schema, key = unique("logged"), secrets.token_urlsafe(24)
    hashed = keys_hash(key).stdout.strip()
    secret_text = "CONTENT-" + secrets.token_hex(8)
    env = server_env(pg_url, tenant_key_map=f"{hashed}:{schema}", api_key=key, log_level="INFO")
    with tempfile.TemporaryFile("w+") as errlog:
        async with stdio_client(env, errlog) as client:
            await call(client, "retain", content=f"The diary says {secret_text}.", bank="diary", context=secret_text)
            await call(client, "recall", query=secret_text, bank="diary")
            await call(client, "recall", query=secret_text, bank="elsewhere")
            await call_error(client, "retain", content=12345, bank="diary")
            await call_error(client, "retain", content=secret_text, bank="bad bank\nforged=line")
            await call(client, "list_banks")
            await call_error(client, f"no_such_tool_{secret_text}", query=secret_text)
        errlog.seek(0)
        log = errlog.read()
    assert key not in log and hashed not in log and secret_text not in log
    calls = [m.groupdict() for m in map(CALL_LINE.search, log.splitlines()) if m]
    assert len(calls) == log.count("mcp_server.calls") == 7, log
    assert all(c["tenant"] == schema for c in calls)
    assert [(c["tool"], c["bank"], c["outcome"]) for c in calls] == [
        ("retain", "diary", "ok"),
        ("recall", "diary", "ok"),
        ("recall", "elsewhere", "ok"),
        ("retain", "diary", "rejected"),
        ("retain", "-", "rejected"),
        ("list_banks", "-", "ok"),
        ("unknown", "-", "rejected"),
    ]

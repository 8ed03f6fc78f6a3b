"""The dashboard over plain HTTP, against a spawned `bulkhead serve --transport http`: sign-in,
sessions, scope, CSRF and origin checks, headers, and `bulkhead ui`."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest
from helpers import REPO, server_env, unique
from helpers.http import HttpServer, bearer, http_server
from helpers.web import SAME_ORIGIN, csrf_of, dashboard, retain_all, sign_in

from mcp_server.web.assets import HTMX, HTMX_SHA256, STATIC, check_htmx
from mcp_server.web.security import HEADERS


@dataclass
class Tenants:
    server: HttpServer
    keys: tuple[str, str]
    schemas: tuple[str, str]
    ids: tuple[list[str], list[str]]
    banks: tuple[str, str]


@pytest.fixture(scope="module")
def tenants(pg_url: str) -> Iterator[Tenants]:
    keys = (unique("key_a"), unique("key_b"))
    schemas = (unique("web_a"), unique("web_b"))
    banks = ("notes-a", "notes-b")
    key_map = f"{keys[0]}:{schemas[0]};{keys[1]}:{schemas[1]}"
    with http_server(server_env(pg_url, tenant_key_map=key_map, embedder="none", log_level="INFO")) as server:
        ids = tuple(
            retain_all(
                server.url,
                key,
                bank,
                [{"content": f"{bank} fact {i}", "document_id": f"doc-{i}", "tags": ["t"]} for i in range(3)],
            )
            for key, bank in zip(keys, banks, strict=True)
        )
        yield Tenants(server, keys, schemas, ids, banks)  # type: ignore[arg-type]


def test_wrong_keys_set_no_cookie_and_all_read_the_same(tenants: Tenants) -> None:
    a = tenants.keys[0]
    bodies = set()
    for wrong in ("", "nope", a + "x", a[:-1], a.upper(), f" {a}", tenants.schemas[0], "sha256:" + "0" * 64):
        with dashboard(tenants.server.url) as client:
            reply = sign_in(client, wrong)
            assert reply.status_code in (400, 401), reply.text
            assert "set-cookie" not in reply.headers
            assert not client.cookies
            if reply.status_code == 401:
                bodies.add(reply.text)
    assert len(bodies) == 1
    assert "not valid" in bodies.pop()


def test_a_session_cookie_holds_a_random_id_only_and_the_row_no_key(tenants: Tenants, pg_url: str) -> None:
    key = tenants.keys[0]
    with dashboard(tenants.server.url) as client:
        reply = sign_in(client, key)
        assert reply.status_code == 303 and reply.headers["location"] == "/ui/"
        cookie = reply.headers["set-cookie"]
        assert re.match(r"bulkhead_session=[A-Za-z0-9_-]{43}; HttpOnly; Path=/; SameSite=strict$", cookie), cookie
        session_id = client.cookies["bulkhead_session"]
        assert key not in cookie and hashlib.sha256(key.encode()).hexdigest() not in cookie
        page = client.get("/")
        assert page.status_code == 200 and tenants.schemas[0] in page.text

    import asyncio

    import asyncpg

    async def rows() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(pg_url)
        try:
            return await conn.fetch("SELECT * FROM bulkhead_web.sessions")
        finally:
            await conn.close()

    stored = asyncio.run(rows())
    digest = hashlib.sha256(key.encode()).digest()
    for row in stored:
        for value in row.values():
            raw = value if isinstance(value, bytes) else str(value).encode()
            assert key.encode() not in raw and digest not in raw and session_id.encode() not in raw


def test_without_a_session_every_page_sends_to_sign_in(tenants: Tenants) -> None:
    bank, memory = tenants.banks[0], tenants.ids[0][0]
    with dashboard(tenants.server.url) as client:
        for path in (
            "/",
            f"/banks/{bank}/",
            f"/banks/{bank}/memories/{memory}",
            f"/banks/{bank}/recall?query=fact",
            f"/banks/{bank}/export",
            f"/banks/{bank}/forget?everything=1",
        ):
            reply = client.get(path)
            assert (reply.status_code, reply.headers.get("location")) == (303, "/ui/sign-in"), path
        assert client.get("/banks/x/", headers={"HX-Request": "true"}).headers["HX-Redirect"] == "/ui/sign-in"
        refused = client.post(f"/banks/{bank}/forget", data={"everything": "1"}, headers=SAME_ORIGIN)
        assert refused.status_code == 303
    with dashboard(tenants.server.url) as client:
        sign_in(client, tenants.keys[0])
        assert tenants.banks[0] in client.get("/").text


def test_the_dashboard_ignores_bearer_keys_and_mcp_ignores_cookies(tenants: Tenants) -> None:
    with dashboard(tenants.server.url) as client:
        assert client.get("/", headers=bearer(tenants.keys[0])).status_code == 303
        sign_in(client, tenants.keys[0])
        cookie = client.cookies["bulkhead_session"]
    mcp = httpx2.post(
        f"{tenants.server.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream", "Cookie": f"bulkhead_session={cookie}"},
    )
    assert mcp.status_code == 401


def test_other_tenants_names_and_ids_give_the_same_404_as_unknown_ones(tenants: Tenants) -> None:
    (own_bank, other_bank), (_, other_ids) = tenants.banks, tenants.ids
    nobody = "00000000-0000-4000-8000-000000000000"
    with dashboard(tenants.server.url) as client:
        sign_in(client, tenants.keys[0])

        def same(foreign: str, unknown: str, swap: tuple[str, str]) -> None:
            a, b = client.get(foreign), client.get(unknown)
            assert a.status_code == b.status_code == 404, (foreign, a.text)
            # Identical but for the name itself, which the page repeats as it was asked for.
            assert a.text.replace(*swap) == b.text

        for suffix in (
            "/",
            "/recall?query=fact",
            "/reflect?query=fact",
            "/export",
            "/forget?everything=1",
            f"/memories/{nobody}",
        ):
            same(f"/banks/{other_bank}{suffix}", f"/banks/never-made{suffix}", (other_bank, "never-made"))
        same(
            f"/banks/{own_bank}/memories/{other_ids[0]}", f"/banks/{own_bank}/memories/{nobody}", (other_ids[0], nobody)
        )
        same(f"/banks/{own_bank}/memories/not-a-uuid", f"/banks/{own_bank}/memories/{nobody}", ("not-a-uuid", nobody))
        same(
            f"/banks/{own_bank}/forget?memory_id={other_ids[0]}",
            f"/banks/{own_bank}/forget?memory_id={nobody}",
            (other_ids[0], nobody),
        )
        same(f"/banks/{own_bank}/forget?document_id=doc-9", f"/banks/{own_bank}/forget?document_id=doc-8", ("", ""))
        # A forget naming B's ids in A's bank deletes nothing anywhere.
        token = csrf_of(client.get("/").text)
        client.post(f"/banks/{own_bank}/forget", data={"csrf": token, "memory_id": other_ids}, headers=SAME_ORIGIN)
    with dashboard(tenants.server.url) as client:
        sign_in(client, tenants.keys[1])
        page = client.get(f"/banks/{other_bank}/").text
        assert all(i in page for i in other_ids)
        assert own_bank not in client.get("/").text


def test_a_post_without_the_csrf_token_or_from_another_site_is_refused(tenants: Tenants) -> None:
    bank, [first, *_] = tenants.banks[0], tenants.ids[0]
    with dashboard(tenants.server.url) as client:
        sign_in(client, tenants.keys[0])
        token = csrf_of(client.get("/").text)
        attempts = [
            ({"memory_id": first}, SAME_ORIGIN),
            ({"memory_id": first, "csrf": ""}, SAME_ORIGIN),
            ({"memory_id": first, "csrf": token[:-1] + ("A" if token[-1] != "A" else "B")}, SAME_ORIGIN),
            ({"memory_id": first, "csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
            ({"memory_id": first, "csrf": token}, {"Sec-Fetch-Site": "same-site"}),
            ({"memory_id": first, "csrf": token}, {"Origin": "null"}),
            ({"memory_id": first, "csrf": token}, {"Origin": "http://evil.example"}),
        ]
        for form, headers in attempts:
            reply = client.post(f"/banks/{bank}/forget", data=form, headers=headers)
            assert reply.status_code == 403, (form, headers)
        assert first in client.get(f"/banks/{bank}/").text
        # A sign-in from another site is refused too (login CSRF).
        assert (
            client.post("/sign-in", data={"key": tenants.keys[0]}, headers={"Sec-Fetch-Site": "cross-site"}).status_code
            == 403
        )
        # GETs change nothing: the confirmation page deletes nothing.
        assert client.get(f"/banks/{bank}/forget", params={"memory_id": first}).status_code == 200
        assert first in client.get(f"/banks/{bank}/").text


def test_reflect_answers_from_the_viewers_bank_and_links_what_it_cites(tenants: Tenants) -> None:
    own_bank, own_ids = tenants.banks[0], tenants.ids[0]
    with dashboard(tenants.server.url) as client:
        sign_in(client, tenants.keys[0])
        assert client.get(f"/banks/{own_bank}/").text.count(f"/ui/banks/{own_bank}/reflect") == 1
        empty = client.get(f"/banks/{own_bank}/reflect")
        assert empty.status_code == 200 and 'id="answer"' not in empty.text
        page = client.get(f"/banks/{own_bank}/reflect", params={"query": "Which fact is number 1?"})
        assert page.status_code == 200, page.text
        assert "mode <code>extractive</code>" in page.text and "no model endpoint is configured" in page.text
        cited = [memory_id for memory_id in own_ids if f"/ui/banks/{own_bank}/memories/{memory_id}" in page.text]
        assert cited and f"{own_bank} fact 1" in page.text
        assert not any(memory_id in page.text for memory_id in tenants.ids[1])


def test_every_response_carries_the_security_headers(tenants: Tenants) -> None:
    with dashboard(tenants.server.url) as client:
        replies = [client.get("/sign-in"), client.get("/"), client.get("/static/htmx.min.js"), client.get("/nowhere")]
        sign_in(client, tenants.keys[0])
        replies += [client.get("/"), client.get(f"/banks/{tenants.banks[0]}/"), client.get("/banks/zz/")]
        replies.append(client.post(f"/banks/{tenants.banks[0]}/forget", data={}, headers=SAME_ORIGIN))
    for reply in replies:
        for name, value in HEADERS.items():
            assert reply.headers.get(name) == value, (reply.url, name)
    csp = HEADERS["Content-Security-Policy"]
    for rule in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert rule in csp
    assert "unsafe" not in csp


def test_a_host_the_dashboard_is_not_served_as_is_refused(tenants: Tenants) -> None:
    """A DNS-rebinding page reaches the loopback server under its own host name."""
    with dashboard(tenants.server.url) as client:
        assert client.get("/sign-in", headers={"Host": "evil.example"}).status_code == 421
        assert client.get("/sign-in", headers={"Host": "localhost"}).status_code == 200


def test_sign_out_deletes_the_session(tenants: Tenants) -> None:
    with dashboard(tenants.server.url) as client:
        sign_in(client, tenants.keys[0])
        cookie = client.cookies["bulkhead_session"]
        token = csrf_of(client.get("/").text)
        assert client.post("/sign-out", data={}, headers=SAME_ORIGIN).status_code == 403
        out = client.post("/sign-out", data={"csrf": token}, headers=SAME_ORIGIN)
        assert (out.status_code, out.headers["location"]) == (303, "/ui/sign-in")
    with dashboard(tenants.server.url) as again:
        again.cookies.set("bulkhead_session", cookie)
        assert again.get("/").status_code == 303


def test_export_is_every_memory_as_json_lines(tenants: Tenants) -> None:
    import json

    with dashboard(tenants.server.url) as client:
        sign_in(client, tenants.keys[1])
        reply = client.get(f"/banks/{tenants.banks[1]}/export")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/x-ndjson")
    assert reply.headers["content-disposition"] == f'attachment; filename="{tenants.banks[1]}.jsonl"'
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert [line["id"] for line in lines] == tenants.ids[1]
    assert {line["text"] for line in lines} == {f"{tenants.banks[1]} fact {i}" for i in range(3)}
    assert set(lines[0]) == {
        "id",
        "document_id",
        "chunk_index",
        "text",
        "context",
        "tags",
        "metadata",
        "occurred_at",
        "retained_at",
    }


def test_sign_in_failures_are_rate_limited_per_client(pg_url: str) -> None:
    key, schema = unique("key"), unique("web_limit")
    with (
        http_server(server_env(pg_url, tenant_key_map=f"{key}:{schema}", embedder="none")) as server,
        dashboard(server.url) as client,
    ):
        statuses = [sign_in(client, f"wrong-{i}").status_code for i in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
        # Past the limit even the right key is refused, and no cookie is set.
        limited = sign_in(client, key)
        assert limited.status_code == 429 and "set-cookie" not in limited.headers


def test_removing_a_key_from_the_map_ends_its_sessions(pg_url: str) -> None:
    kept, removed, schema = unique("kept"), unique("removed"), unique("web_rotate")
    both = f"{kept}:{schema};{removed}:{schema}"
    with http_server(server_env(pg_url, tenant_key_map=both, embedder="none")) as server:
        cookies = {}
        for key in (kept, removed):
            with dashboard(server.url) as client:
                sign_in(client, key)
                assert client.get("/").status_code == 200
                cookies[key] = client.cookies["bulkhead_session"]
    # The same database, a map without the removed key: its session ends, the other lives on.
    with http_server(server_env(pg_url, tenant_key_map=f"{kept}:{schema}", embedder="none")) as server:
        for key, status in ((kept, 200), (removed, 303), (removed, 303)):
            with dashboard(server.url) as client:
                client.cookies.set("bulkhead_session", cookies[key])
                assert client.get("/").status_code == status, key


def test_the_vendored_htmx_is_the_pinned_release_with_its_licence(tenants: Tenants) -> None:
    assert hashlib.sha256(HTMX.read_bytes()).hexdigest() == HTMX_SHA256
    check_htmx()
    assert "Zero-Clause BSD" in (STATIC / "LICENSE-htmx").read_text()
    served = httpx2.get(f"{tenants.server.url}/ui/static/htmx.min.js")
    assert hashlib.sha256(served.content).hexdigest() == HTMX_SHA256
    assert served.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_a_changed_htmx_file_stops_the_dashboard(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mcp_server.errors import Misconfigured

    changed = tmp_path / "htmx.min.js"
    changed.write_bytes(HTMX.read_bytes() + b"\n// changed")
    with pytest.raises(Misconfigured, match=r"not htmx 2\.0\.11"):
        check_htmx(changed)


def test_bulkhead_ui_serves_the_default_schema_alone_on_loopback(pg_url: str) -> None:
    schema = unique("web_alone")
    # Keys configured or not, `bulkhead ui` has no sign-in: it is one person's, on loopback.
    env = server_env(
        pg_url, default_schema=schema, tenant_key_map=f"{unique('k')}:{unique('t')}", embedder="none", log_level="INFO"
    )
    retain_env = server_env(pg_url, default_schema=schema, embedder="none")
    import anyio
    from helpers import call, stdio_client

    async def fill() -> None:
        async with stdio_client(retain_env) as client:
            await call(client, "retain", bank="mine", content="alone on loopback")

    anyio.run(fill)
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "ui", "--port", "0"],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline, line = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "listening on" not in line:
            line = process.stderr.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+): dashboard at /ui/ \(auth off, schema (\w+)\)", line)
        assert found and found.group(2) == schema, line
        url = found.group(1)
        with dashboard(url) as client:
            page = client.get("/")
            assert page.status_code == 200
            assert f"auth off · schema <strong>{schema}</strong>" in page.text and "mine" in page.text
            assert "Sign out" not in page.text
            assert client.get("/sign-in").status_code == 303
            token = csrf_of(client.get("/banks/mine/forget?everything=1").text)
            assert client.post("/banks/mine/forget", data={"everything": "1"}, headers=SAME_ORIGIN).status_code == 403
            done = client.post("/banks/mine/forget", data={"everything": "1", "csrf": token}, headers=SAME_ORIGIN)
            assert done.headers["location"] == "/ui/?deleted=1"
        for path in ("/mcp", "/sse", "/healthz"):
            assert httpx2.get(url + path).status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=30)

"""The dashboard in a real browser: Playwright driving Debian's chromium (never a browser that
Playwright downloads) against a spawned `bulkhead serve --transport http`.

Without chromium the tests skip, except under `CI=true`, where a missing browser fails the run.
Screenshots of the main pages go to `BULKHEAD_SCREENSHOT_DIR` when it is set (the README's come
from there), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import server_env, unique
from helpers.http import HttpServer, http_server
from helpers.web import recall_ids, retain_all

playwright_sync = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect  # noqa: E402

XSS_SCRIPT = "<script>document.title='owned'</script> the launch code is blue"
XSS_IMG = "<img src=x onerror=\"document.title='owned'\"> the password hint is 'tea'"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI must have it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with playwright_sync.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BULKHEAD_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class World:
    server: HttpServer
    keys: tuple[str, str]
    schemas: tuple[str, str]
    a_ids: list[str]
    b_ids: list[str]
    a_bank: str = "travel-notes"
    b_bank: str = field(default_factory=lambda: unique("secret-b"))


A_MEMORIES = [
    {
        "content": "Alice: I moved to Porto in March and love the tiled houses.",
        "tags": ["home"],
        "occurred_at": "2024-03-02T10:00:00Z",
        "document_id": "chat-1",
    },
    {
        "content": "Bob: Porto sounds lovely. Did you find a flat near the river?",
        "tags": ["home"],
        "occurred_at": "2024-03-02T10:01:00Z",
        "document_id": "chat-2",
    },
    {
        "content": "Alice: Yes, a small flat in Ribeira with a view of the bridge.",
        "tags": ["home", "flat"],
        "occurred_at": "2024-03-02T10:02:00Z",
        "document_id": "chat-3",
    },
    {
        "content": "The deploy of the billing service failed on Friday because of an expired certificate.",
        "tags": ["work"],
        "occurred_at": "2024-05-10T16:30:00Z",
        "context": "incident review",
    },
    {"content": "Alice prefers window seats on long flights and always packs a paper book.", "tags": ["travel"]},
    {"content": XSS_SCRIPT, "tags": ["hostile"]},
    {"content": XSS_IMG, "tags": ["hostile"], "metadata": {"note": "<b>bold?</b>"}},
]


@pytest.fixture(scope="module")
def world(pg_url: str) -> Iterator[World]:
    keys, schemas = (unique("key_a"), unique("key_b")), (unique("ui_a"), unique("ui_b"))
    key_map = f"{keys[0]}:{schemas[0]};{keys[1]}:{schemas[1]}"
    with http_server(server_env(pg_url, tenant_key_map=key_map, log_level="INFO")) as server:
        b_bank = unique("secret-b")
        a_ids = retain_all(server.url, keys[0], "travel-notes", A_MEMORIES)
        b_ids = retain_all(server.url, keys[1], b_bank, [{"content": "B's private fact: the vault code is 0451."}])
        yield World(server, keys, schemas, a_ids, b_ids, b_bank=b_bank)


class Watched:
    """A page whose console and errors are recorded, to show that no CSP violation happened."""

    def __init__(self, context: BrowserContext) -> None:
        self.page: Page = context.new_page()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda message: self.console.append(_text(message)))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))

    def violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line or "Refused to" in line]


def _text(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def signed_in(browser: Browser, world: World, which: int) -> tuple[BrowserContext, Watched]:
    context = browser.new_context(base_url=world.server.url, viewport={"width": 1280, "height": 800})
    watched = Watched(context)
    page = watched.page
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    page.fill("#key", world.keys[which])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/ui/$"))
    return context, watched


def test_a_wrong_key_sets_no_cookie(browser: Browser, world: World, shots: Path) -> None:
    context = browser.new_context(base_url=world.server.url, viewport={"width": 1280, "height": 800})
    watched = Watched(context)
    page = watched.page
    page.goto("/ui/")
    page.screenshot(path=shots / "sign-in.png")
    page.fill("#key", world.keys[0] + "-wrong")
    page.click("button[type=submit]")
    expect(page.locator("[role=alert]")).to_have_text("That key is not valid.")
    assert context.cookies() == []
    assert watched.violations() == [] and watched.errors == []
    # The watch sees a violation when there is one: an inline script is refused and reported.
    with pytest.raises(playwright_sync.Error):
        page.add_script_tag(content="document.title = 'inline ran'")
    assert page.title() != "inline ran"
    expect_violation = watched.violations()
    assert expect_violation and "inline script" in expect_violation[0], watched.console
    context.close()


def test_sign_in_browse_filter_debug_and_forget(browser: Browser, world: World, shots: Path) -> None:
    context, watched = signed_in(browser, world, 0)
    page = watched.page
    [cookie] = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and world.keys[0] not in cookie["value"]
    # The banks page: A's bank with its counts, nothing of B's.
    expect(page.locator("header .tenant")).to_contain_text(world.schemas[0])
    row = page.locator("table.banks tbody tr", has_text=world.a_bank)
    expect(row.locator("td").nth(1)).to_have_text(str(len(A_MEMORIES)))
    assert world.b_bank not in page.content() and world.schemas[1] not in page.content()
    page.screenshot(path=shots / "banks.png")
    # htmx loaded from the dashboard itself, configured from its meta tag: no eval, no script
    # tags from responses, no history snapshots of pages, no inline indicator styles.
    config = page.evaluate(
        "() => [htmx.version, htmx.config.allowEval, htmx.config.allowScriptTags,"
        " htmx.config.historyCacheSize, htmx.config.includeIndicatorStyles, htmx.config.selfRequestsOnly]"
    )
    assert config == ["2.0.11", False, False, 0, False, True]

    # The memory browser, newest first; hostile text shows as text.
    page.click(f"text={world.a_bank}")
    expect(page.locator("#memories tbody tr")).to_have_count(len(A_MEMORIES))
    expect(page.locator("#memories tbody tr").first).to_contain_text("the password hint is 'tea'")
    expect(page.locator("#memories")).to_contain_text("<script>document.title='owned'</script>")
    assert page.locator("#memories img").count() == 0 and page.locator("main script").count() == 0
    page.screenshot(path=shots / "memories.png", full_page=True)

    # Filter by text and by tag (htmx swaps the list in place).
    page.fill("input[name=text]", "Porto")
    page.click("form.filters button")
    expect(page.locator("#memories tbody tr")).to_have_count(2)
    # htmx swapped the list in place (a plain form submission would have changed the address).
    expect(page).to_have_url(re.compile(rf"/ui/banks/{world.a_bank}/$"))
    page.fill("input[name=text]", "")
    page.fill("input[name=tags]", "home,flat")
    page.click("form.filters button")
    expect(page.locator("#memories tbody tr")).to_have_count(1)
    expect(page.locator("#memories")).to_contain_text("Ribeira")
    page.fill("input[name=tags]", "")
    page.fill("input[name=since]", "2024-05-01")
    page.fill("input[name=until]", "2024-05-31")
    page.click("form.filters button")
    expect(page.locator("#memories tbody tr")).to_have_count(1)
    expect(page.locator("#memories")).to_contain_text("expired certificate")

    # The detail view, every field; the hostile memory's markup stays text.
    page.goto(f"/ui/banks/{world.a_bank}/memories/{world.a_ids[6]}")
    expect(page.locator("pre.text").first).to_have_text(XSS_IMG)
    expect(page.locator("dl.fields")).to_contain_text('"note": "<b>bold?</b>"')
    assert page.locator("main img").count() == 0 and page.locator("main b").count() == 0
    page.goto(f"/ui/banks/{world.a_bank}/memories/{world.a_ids[3]}")
    for text in ("incident review", "work", "2024-05-10 16:30:00+00:00", world.a_ids[3]):
        expect(page.locator("dl.fields")).to_contain_text(text)
    page.screenshot(path=shots / "memory.png", full_page=True)

    # The recall debugger: the same ranking as the tool, with the signals behind each score.
    page.goto(f"/ui/banks/{world.a_bank}/recall")
    page.fill("input[name=query]", "Where does Alice live in Porto?")
    page.click("form.filters button")
    rows = page.locator("#results tbody tr")
    expect(rows.first).to_be_visible()
    tool_order = recall_ids(world.server.url, world.keys[0], world.a_bank, "Where does Alice live in Porto?")
    links = rows.locator("td.text a")
    shown = [href.rsplit("/", 1)[-1] for href in links.evaluate_all("(els) => els.map((e) => e.href)")]
    assert shown == tool_order[: len(shown)] and len(shown) == min(10, len(tool_order))
    headers = page.locator("#results thead th").all_inner_texts()
    for name in (
        "SCORE",
        "FULL-TEXT RANK",
        "WORD RARITY",
        "COSINE",
        "NEIGHBOUR SHARE",
        "DATE BONUS",
        "SPEAKER BONUS",
        "RECENCY",
    ):
        assert name in [h.upper() for h in headers]
    first_cells = rows.first.locator("td.num").all_inner_texts()
    assert first_cells[0] and first_cells[3], first_cells  # a score and a cosine
    page.screenshot(path=shots / "recall.png", full_page=True)

    # Forget a selection, with a confirmation that names it; then it is gone, through MCP too.
    page.goto(f"/ui/banks/{world.a_bank}/")
    target = world.a_ids[4]
    page.check(f"input[name=memory_id][value='{target}']")
    page.click("text=Forget selected")
    expect(page.locator("ul.doomed li")).to_have_count(1)
    expect(page.locator("ul.doomed")).to_contain_text(target)
    expect(page.locator("ul.doomed")).to_contain_text("window seats")
    page.screenshot(path=shots / "confirm.png")
    assert target in recall_ids(world.server.url, world.keys[0], world.a_bank, "window seats")  # not yet deleted
    page.click("button.danger:has-text('Delete')")
    expect(page.locator(".notice")).to_have_text("Deleted 1 memory.")
    expect(page.locator("#memories tbody tr")).to_have_count(len(A_MEMORIES) - 1)
    assert target not in recall_ids(world.server.url, world.keys[0], world.a_bank, "window seats")

    # Forget a document (chat-1, one memory).
    page.goto(f"/ui/banks/{world.a_bank}/memories/{world.a_ids[0]}")
    page.click("text=Forget its document")
    expect(page.locator("form.confirm")).to_contain_text("document chat-1 and its 1 memory from bank")
    page.click("button.danger:has-text('Delete')")
    expect(page.locator(".notice")).to_have_text("Deleted 1 memory.")
    left = recall_ids(world.server.url, world.keys[0], world.a_bank, "Porto")
    assert world.a_ids[0] not in left and world.a_ids[1] in left

    assert watched.violations() == [], watched.console
    assert watched.errors == [] and watched.dialogs == []
    assert page.title() != "owned"
    context.close()


def test_another_tenants_ids_by_url_give_404(browser: Browser, world: World) -> None:
    context, watched = signed_in(browser, world, 0)
    page = watched.page
    unknown_bank = page.goto(f"/ui/banks/{unique('nobody')}/")
    foreign_bank = page.goto(f"/ui/banks/{world.b_bank}/")
    assert unknown_bank is not None and foreign_bank is not None
    assert unknown_bank.status == foreign_bank.status == 404
    foreign_memory = page.goto(f"/ui/banks/{world.a_bank}/memories/{world.b_ids[0]}")
    assert foreign_memory is not None and foreign_memory.status == 404
    assert "vault" not in page.content()
    context.close()


def test_a_post_without_the_csrf_token_is_refused(browser: Browser, world: World) -> None:
    context, watched = signed_in(browser, world, 1)
    page = watched.page
    # The context's own cookie goes with the request: only the token is missing.
    refused = page.request.post(
        f"/ui/banks/{world.b_bank}/forget",
        form={"memory_id": world.b_ids[0]},
        headers={"Sec-Fetch-Site": "same-origin"},
        max_redirects=0,
    )
    assert refused.status == 403
    page.goto(f"/ui/banks/{world.b_bank}/")
    expect(page.locator("#memories")).to_contain_text("vault code")
    context.close()


def test_two_tenants_side_by_side_never_see_each_other(browser: Browser, world: World) -> None:
    context_a, a = signed_in(browser, world, 0)
    context_b, b = signed_in(browser, world, 1)
    for _ in range(2):
        a.page.reload()
        b.page.reload()
        expect(a.page.locator("header .tenant")).to_contain_text(world.schemas[0])
        expect(b.page.locator("header .tenant")).to_contain_text(world.schemas[1])
        assert world.b_bank not in a.page.content() and world.a_bank in a.page.content()
        assert world.a_bank not in b.page.content() and world.b_bank in b.page.content()
    b.page.goto(f"/ui/banks/{world.b_bank}/")
    expect(b.page.locator("#memories")).to_contain_text("vault code")
    response = a.page.goto(f"/ui/banks/{world.b_bank}/")
    assert response is not None and response.status == 404
    # Signing out in B's context leaves A's session alone.
    b.page.click("header .sign-out button")
    expect(b.page).to_have_url(re.compile(r"/ui/sign-in$"))
    assert context_b.cookies() == []
    a.page.goto("/ui/")
    expect(a.page.locator("header .tenant")).to_contain_text(world.schemas[0])
    context_a.close()
    context_b.close()


def test_a_removed_keys_session_stops_working(browser: Browser, pg_url: str) -> None:
    kept, removed, schema = unique("kept"), unique("removed"), unique("ui_rotate")
    env = {"embedder": "none"}
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    with http_server(server_env(pg_url, tenant_key_map=f"{kept}:{schema};{removed}:{schema}", **env)) as server:
        page.goto(f"{server.url}/ui/sign-in")
        page.fill("#key", removed)
        page.click("button[type=submit]")
        expect(page.locator("header .tenant")).to_contain_text(schema)
    with http_server(server_env(pg_url, tenant_key_map=f"{kept}:{schema}", **env)) as server:
        # Cookies belong to the host, not the port: the browser sends the same session id.
        page.goto(f"{server.url}/ui/")
        expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    context.close()

"""Issue 21's console items (1, 2, 5, 6, copy buttons) and issue 20 item 8, in headless Chromium
at 1280 and 390 px: no page wider than the viewport, screenshots in tests/artifacts/screenshots/
(no-dead-ends-*).

1. The "ready" page says what happens next (WebWork is polled) and shows its secrets once.
2. Connections offers only what this server can connect; a connect URL it cannot serve is a
   styled page naming the variables.
5. Replay shows its outcome without a manual reload; a malformed delivery offers none.
6. An ended session keeps the form; sign-out says so.
Copy buttons beside one-time secrets work with JavaScript and are absent without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select, update

from connector import db, worker
from connector.models import ApiToken, Job, JobState, Workspace
from tests.admin.events import approval
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, require_chromium, shot, sign_in

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
EMAIL = "ada@example.com"
WIDTHS = (1280, 390)


@pytest.fixture
def chromium(live_server: str) -> Iterator[Any]:
    """A browser to open several contexts with (two tabs, JavaScript off)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Content-Security-Policy violations each browser context reported, by context.
CSP_VIOLATIONS: dict[int, list[str]] = {}


def open_context(chromium: Any, live_server: str, width: int, **options: Any) -> Any:
    context = chromium.new_context(
        base_url=live_server, viewport={"width": width, "height": 900}, **options
    )
    seen = CSP_VIOLATIONS.setdefault(id(context), [])

    def watch(page: Any) -> None:
        page.on(
            "console",
            lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None,
        )

    context.on("page", watch)
    return context


def close(context: Any) -> None:
    """Close the context; no page of it may have met a CSP violation (no inline script)."""
    violations = CSP_VIOLATIONS.pop(id(context), [])
    context.close()
    assert violations == [], violations


def fits(page: Any, width: int, what: str) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{what} is {scroll} px wide at {width} px"


def signed_in_page(context: Any, start: str) -> Any:
    page = context.new_page()
    page.goto(start)
    sign_in(page, EMAIL, PASSWORD)
    page.wait_for_url(f"**{start}")
    return page


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("width", WIDTHS)
def test_ready_page_tells_what_happens_next_and_shows_secrets_once(
    chromium: Any, live_server: str, make_admin: Any, width: int
) -> None:
    make_admin(email=EMAIL, password=PASSWORD)
    context = open_context(chromium, live_server, width)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto("/")
    sign_in(page, EMAIL, PASSWORD)
    page.wait_for_url("**/workspaces/new")

    # Issue 20 item 8: ids are checked, and said what is allowed, at the field.
    for bad in ("<script>alert(1)</script>", "-5"):
        page.get_by_label("Workspace name").fill("Acme Consulting")
        page.get_by_label("The tracker's workspace id").fill(bad)
        page.get_by_role("button", name="Create workspace").click()
        expect(page.locator("#tracker-error")).to_contain_text("digits 0-9 only")
    fits(page, width, "the new-workspace form with an error")
    shot(page, f"no-dead-ends-new-workspace-error-{width}")

    page.get_by_label("The tracker's workspace id").fill("4242")
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url("**/created/**")
    ready_url = page.url
    secret = page.locator("#signing-secret").inner_text()
    assert secret.startswith("whsec_")
    assert page.locator("#api-token").inner_text().startswith("tsi_")
    expect(page.get_by_text("Nothing needs pasting into WebWork")).to_be_visible()
    assert "into WebWork's webhook settings" not in page.content()
    fits(page, width, "the ready page")
    shot(page, f"no-dead-ends-ready-{width}")

    # The copy button (console.js, external: the CSP forbids inline scripts) copies the secret.
    copy = page.get_by_role("button", name="Copy the signing secret")
    expect(copy).to_be_visible()
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # A reload repeats nothing and shows the secrets no more.
    page.reload()
    expect(page.locator("#already-shown")).to_be_visible()
    assert secret not in page.content()
    assert count(Workspace) == 1
    shot(page, f"no-dead-ends-ready-reloaded-{width}")

    # The same id again: a field error, never a 500.
    page.goto("/workspaces/new")
    page.get_by_label("Workspace name").fill("Acme again")
    page.get_by_label("The tracker's workspace id").fill("4242")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.locator("#tracker-error")).to_contain_text("already receives")
    assert ready_url != page.url and count(Workspace) == 1
    close(context)


@pytest.mark.parametrize("width", WIDTHS)
def test_secrets_and_tokens_are_shown_once_by_a_get(
    chromium: Any, live_server: str, workspace: Any, make_admin: Any, width: int
) -> None:
    make_admin(workspace, email=EMAIL, password=PASSWORD)
    context = open_context(chromium, live_server, width)
    ws = f"/workspaces/{workspace.id}"
    page = signed_in_page(context, f"{ws}/signing-secret")
    expect(page.get_by_text("WebWork needs nothing from this page")).to_be_visible()
    page.get_by_role("button", name="Create a new secret and show it once").click()
    page.wait_for_url("**/signing-secret/new/**")
    expect(page.locator("#new-secret")).to_contain_text("whsec_")
    fits(page, width, "the new signing secret")
    shot(page, f"no-dead-ends-signing-secret-{width}")
    page.reload()
    expect(page.locator("#already-shown")).to_be_visible()
    expect(page.get_by_text("2 secret(s) currently verify")).to_be_visible()  # one rotation

    page.goto(f"{ws}/tokens")
    page.get_by_label("New token name").fill("reporting")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url("**/tokens/new/**")
    expect(page.locator("#new-token")).to_contain_text("tsi_")
    expect(page.get_by_role("button", name="Copy the API token")).to_be_visible()
    fits(page, width, "the new token")
    shot(page, f"no-dead-ends-token-{width}")
    page.reload()
    expect(page.locator("#already-shown")).to_be_visible()
    assert count(ApiToken) == 2  # the workspace's first token and "reporting": not two
    close(context)


def test_without_javascript_the_secret_is_plain_text_and_no_copy_button_shows(
    chromium: Any, live_server: str, workspace: Any, make_admin: Any
) -> None:
    make_admin(workspace, email=EMAIL, password=PASSWORD)
    context = open_context(chromium, live_server, 390, java_script_enabled=False)
    page = signed_in_page(context, f"/workspaces/{workspace.id}/tokens")
    page.get_by_label("New token name").fill("no-js")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_contain_text("tsi_")
    expect(page.locator("button[data-copy-target]")).to_be_hidden()
    fits(page, 390, "the token page without JavaScript")
    shot(page, "no-dead-ends-token-no-js-390")
    close(context)


@pytest.mark.parametrize("width", WIDTHS)
def test_connections_offers_only_what_this_server_can_connect(
    app: Any, chromium: Any, live_server: str, workspace: Any, make_admin: Any, width: int
) -> None:
    for name in ("QUICKBOOKS_CLIENT_ID", "XERO_CLIENT_ID", "WEBWORK_CLIENT_ID"):
        app.config[name] = None
    app.config["STRIPE_CONNECT_CLIENT_ID"] = None
    make_admin(workspace, email=EMAIL, password=PASSWORD)
    context = open_context(chromium, live_server, width)
    ws = f"/workspaces/{workspace.id}"
    page = signed_in_page(context, f"{ws}/connections")
    for label in ("Connect QuickBooks Online", "Connect Xero", "Connect WebWork"):
        expect(page.get_by_role("link", name=label, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="connect with Stripe Connect")).to_have_count(0)
    for variable in ("QUICKBOOKS_CLIENT_ID", "XERO_CLIENT_ID", "WEBWORK_CLIENT_ID"):
        expect(page.locator("code", has_text=variable).first).to_be_visible()
    expect(page.locator("#webwork-token")).to_be_visible()  # a token works without settings
    fits(page, width, "the connections page")
    shot(page, f"no-dead-ends-connections-{width}")

    # An old bookmark of a connect URL: a styled page in plain words, never a bare 400.
    response = page.goto(f"{ws}/connections/webwork/connect")
    assert response is not None and response.status == 400
    expect(
        page.get_by_role("heading", name="Signing in with WebWork is not set up")
    ).to_be_visible()
    expect(page.locator("header.site")).to_be_visible()  # the console's own page
    fits(page, width, "the not-set-up page")
    shot(page, f"no-dead-ends-connect-not-set-up-{width}")
    page.get_by_role("link", name="Back to connections").click()
    page.wait_for_url(f"**{ws}/connections")
    close(context)


@pytest.mark.parametrize("width", WIDTHS)
def test_replay_shows_its_outcome_without_a_manual_reload(
    chromium: Any,
    live_server: str,
    workspace: Any,
    make_admin: Any,
    post_event: Any,
    monkeypatch: Any,
    width: int,
) -> None:
    make_admin(workspace, email=EMAIL, password=PASSWORD)
    assert post_event(workspace, approval("ts-1")).status_code == 202
    bad = approval("ts-bad")
    bad["data"]["timesheet"]["date_to"] = "2000-01-01"
    assert post_event(workspace, bad).status_code == 422
    monkeypatch.setattr(worker, "job_committed", lambda _job_id: None)  # the worker is busy
    context = open_context(chromium, live_server, width)
    ws = f"/workspaces/{workspace.id}"
    page = signed_in_page(context, f"{ws}/deliveries/1")

    page.get_by_role("button", name="Replay this delivery").click()
    expect(page.locator("#replay-outcome")).to_have_attribute("data-done", "no")
    expect(page.get_by_role("link", name="Refresh now")).to_be_visible()
    fits(page, width, "a queued replay")
    shot(page, f"no-dead-ends-replay-queued-{width}")
    # The worker runs it; the page (meta refresh, no script) shows the outcome by itself.
    with db.session_scope() as s:
        s.execute(update(Job).values(state=JobState.DONE))
    expect(page.locator("#replay-outcome")).to_have_attribute("data-done", "yes", timeout=8000)
    expect(page.locator("#replay-outcome")).to_contain_text("Replayed delivery #1")
    shot(page, f"no-dead-ends-replay-done-{width}")

    page.goto(f"{ws}/deliveries/2")
    expect(page.get_by_role("button", name="Replay this delivery")).to_have_count(0)
    expect(page.locator("#not-replayable")).to_be_visible()
    expect(page.get_by_text("as the body names it")).to_be_visible()
    fits(page, width, "a malformed delivery")
    shot(page, f"no-dead-ends-malformed-delivery-{width}")
    close(context)


@pytest.mark.parametrize("width", WIDTHS)
def test_an_ended_session_keeps_the_form_and_sign_out_says_so(
    chromium: Any, live_server: str, workspace: Any, make_admin: Any, width: int
) -> None:
    make_admin(workspace, email=EMAIL, password=PASSWORD)
    context = open_context(chromium, live_server, width)
    ws = f"/workspaces/{workspace.id}"
    tab_a = signed_in_page(context, ws)
    tab_b = context.new_page()
    tab_b.goto(f"{ws}/tokens")
    tab_b.get_by_label("New token name").fill("kept across sign-in")

    tab_a.get_by_role("button", name="Sign out").click()
    tab_a.wait_for_url("**/login**")
    expect(tab_a.get_by_text("You are signed out")).to_be_visible()
    fits(tab_a, width, "the signed-out page")
    shot(tab_a, f"no-dead-ends-signed-out-{width}")

    tab_b.get_by_role("button", name="Create token").click()  # Save in the other tab
    tab_b.wait_for_url("**/login**")
    expect(tab_b.get_by_text("not saved yet")).to_be_visible()
    assert count(ApiToken) == 1
    sign_in(tab_b, EMAIL, PASSWORD)
    tab_b.wait_for_url("**/session/resume")
    expect(tab_b.get_by_text("kept across sign-in")).to_be_visible()  # shown filled in
    fits(tab_b, width, "the kept form")
    shot(tab_b, f"no-dead-ends-resume-{width}")
    tab_b.get_by_role("button", name="Save it now").click()
    tab_b.wait_for_url("**/tokens/new/**")
    expect(tab_b.locator("#new-token")).to_contain_text("tsi_")
    assert count(ApiToken) == 2
    close(context)

"""No page wider than the viewport, at 1280 and 390 px, for the longest input the forms allow
(issue 21 items 3 and 8), in headless Chromium; and errors at the field they are about.

Screenshots: tests/artifacts/screenshots/overlong-*.png. Inputs with a ``maxlength`` are also
sent longer (the value set by script, as a crafted request would), since the server must cope.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from connector import db
from connector.models import Draft, DraftStatus
from tests.admin.events import add_local_customer
from tests.browser.conftest import shot, sign_in
from tests.helpers import event, map_clients_locally

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
WIDTHS = (1280, 390)
LONG_SEARCH = "Globex" * 250  # 1,500 characters, no space to break at
LONG_WORD = "GlobexCorporationInternationalHoldingsEuropeMiddleEastAndAfricaAccountsPayable" * 2


def fits(page: Any, width: int) -> bool:
    return page.evaluate("document.scrollingElement.scrollWidth") <= width


def _check(page: Any, name: str, wide: list[tuple[str, int, int]]) -> None:
    """Record the page (screenshot) at every width, and any width it does not fit."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"overlong-{name}-{width}")
        if not fits(page, width):
            wide.append((name, width, page.evaluate("document.scrollingElement.scrollWidth")))


def _submit_with(page: Any, values: dict[str, str], button: str) -> None:
    """Fill fields by script (past any maxlength, as a crafted request could) and submit."""
    for selector, value in values.items():
        page.locator(selector).evaluate("(el, v) => { el.removeAttribute('maxlength'); }", value)
        page.locator(selector).fill(value)
    page.get_by_role("button", name=button).click()


@pytest.fixture
def signed_in(page: Any, workspace: Any, make_admin: Any) -> Any:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    page.goto(f"/workspaces/{workspace.id}")
    sign_in(page, "ada@example.com", PASSWORD)
    page.wait_for_url(f"**/workspaces/{workspace.id}")
    return page


def test_pages_with_overlong_inputs_fit_the_viewport(
    signed_in: Any, workspace: Any, post_event: Any
) -> None:
    page = signed_in
    ws = f"/workspaces/{workspace.id}"
    long_customer = {"cl-globex": (LONG_WORD, "ap@globex.example")}
    map_clients_locally(workspace.id, long_customer)
    assert post_event(workspace, event("timesheet_approved__three_customers")).status_code == 202
    with db.session_scope() as s:
        drafted = s.scalars(
            select(Draft).where(
                Draft.status == DraftStatus.DRAFTED, Draft.workspace_id == workspace.id
            )
        ).first()
        assert drafted is not None and drafted.link
        ledger_path = drafted.link.split("://", 1)[1].split("/", 1)[1]
        approval_path = f"{ws}/approvals/{drafted.timesheet_pk}"
    wide: list[tuple[str, int, int]] = []

    # The built-in ledger's invoice: the internal note's key, the total table.
    page.goto("/" + ledger_path)
    expect(page.get_by_role("heading", name="Draft invoice")).to_be_visible()
    _check(page, "ledger-invoice", wide)

    for name, path in (
        ("approval", approval_path),
        ("drafts", f"{ws}/drafts"),
        ("mappings-search", f"{ws}/mappings?q={LONG_SEARCH}"),
        ("mapping-search", f"{ws}/mappings/project/p-202?q={LONG_SEARCH}"),
        ("approvals-bad-dates", f"{ws}/approvals?from={LONG_SEARCH}&to=2026-02-30"),
        ("settings", f"{ws}/settings"),
    ):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(path)
        _check(page, name, wide)

    # An overlong currency, echoed in the error at the field, never whole.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{ws}/rates")
    _submit_with(page, {"#rate-amount": "27.50", "#rate-currency": "X" * 1500}, "Add rate")
    expect(page.locator("#currency-error")).to_contain_text("ISO 4217")
    assert "X" * 13 not in page.locator("#currency-error").inner_text()
    _check(page, "rates-currency", wide)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{ws}/settings")
    _submit_with(page, {"#default_currency": "Y" * 1500}, "Save settings")
    expect(page.locator("#default_currency-error")).to_contain_text("is not a currency")
    _check(page, "settings-currency", wide)
    assert wide == [], f"pages wider than the viewport: {wide}"


def test_a_rate_with_too_many_decimals_is_refused_at_the_field(
    signed_in: Any, workspace: Any
) -> None:
    page = signed_in
    page.goto(f"/workspaces/{workspace.id}/rates")
    _submit_with(page, {"#rate-amount": "0.0000001", "#rate-currency": "USD"}, "Add rate")
    error = page.locator("#amount-error")
    expect(error).to_contain_text("more than 4 decimals")
    assert page.locator("#rate-amount").get_attribute("aria-invalid") == "true"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"overlong-rate-decimals-{width}")
        assert fits(page, width)


def test_invalid_filter_dates_are_named_at_their_fields(signed_in: Any, workspace: Any) -> None:
    page = signed_in
    page.goto(f"/workspaces/{workspace.id}/approvals?from=2026-13-01&to=soon")
    expect(page.locator("#from-error")).to_contain_text("is not a date")
    expect(page.locator("#to-error")).to_contain_text("is not a date")
    assert page.locator("#from").get_attribute("aria-invalid") == "true"
    page.goto(f"/workspaces/{workspace.id}/approvals?from=2026-11-20&to=2026-11-01")
    expect(page.locator("#to-error")).to_contain_text("before")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"overlong-filter-dates-{width}")
        assert fits(page, width)


def test_connection_and_token_errors_show_at_their_fields(signed_in: Any, workspace: Any) -> None:
    page = signed_in
    ws = f"/workspaces/{workspace.id}"
    page.goto(f"{ws}/connections")
    page.locator("#stripe-api-key").fill("pk_test_not_a_secret")
    page.get_by_role("button", name="Connect with this key").click()
    expect(page.locator("#stripe-api-key-error")).to_contain_text("publishable key")
    assert page.locator("#stripe-api-key").get_attribute("aria-invalid") == "true"
    assert "key field" in page.locator(".flash.error").inner_text()
    shot(page, "overlong-stripe-key-error-1280")

    page.locator("#webwork-pat").fill("two words")
    page.get_by_role("button", name="Connect with this token").click()
    expect(page.locator("#webwork-pat-error")).to_contain_text("whole personal access token")
    assert page.locator("#webwork-pat").get_attribute("aria-invalid") == "true"
    page.set_viewport_size({"width": 390, "height": 900})
    shot(page, "overlong-webwork-token-error-390")
    assert fits(page, 390)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{ws}/tokens")
    _submit_with(page, {"#name": "n" * 1500}, "Create token")
    expect(page.locator("#name-error")).to_contain_text("1 to 200 characters")
    assert page.locator("#name").get_attribute("aria-invalid") == "true"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"overlong-token-name-{width}")
        assert fits(page, width)


def test_the_consolidation_select_fits_at_390(signed_in: Any, workspace: Any) -> None:
    page = signed_in
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"/workspaces/{workspace.id}/settings")
    box = page.locator("#consolidation").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "overlong-settings-select-390")
    assert fits(page, 390)


def test_favicon_answers(page: Any, live_server: str) -> None:
    response = page.request.get(live_server + "/favicon.ico")
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.body()


def test_rebill_page_shows_hours_one_way(signed_in: Any, workspace: Any, post_event: Any) -> None:
    page = signed_in
    add_local_customer(workspace.id, "Initech")
    map_clients_locally(workspace.id)
    post_event(workspace, event("timesheet_approved__three_customers"))
    with db.session_scope() as s:
        ts_pk = s.scalars(
            select(Draft.timesheet_pk).where(Draft.workspace_id == workspace.id)
        ).first()
    page.goto(f"/workspaces/{workspace.id}/approvals/{ts_pk}/rebill")
    text = page.locator("main").inner_text()
    assert "9 h 40 min" in text and "9.67 h" not in text
    # Nothing changed since the approval: no "Earlier drafts" on its page.
    page.goto(f"/workspaces/{workspace.id}/approvals/{ts_pk}")
    assert page.get_by_role("heading", name="Earlier drafts").count() == 0

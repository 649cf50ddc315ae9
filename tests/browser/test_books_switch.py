"""An admin moves a workspace from the built-in ledger to a QuickBooks company, in Chromium, at
1280 and 390 px (tests/artifacts/screenshots/books-*): the held approval says which books, the
Customers page is the re-map screen (old mappings as history, suggestions ranked), "Map every
exact match" maps in one step and the Drafts page lists the invoices, one row per document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connector import db, pipeline
from connector.models import Workspace
from tests.browser.conftest import shot, sign_in
from tests.helpers import map_clients_locally
from tests.invoices.test_invoice_records import week_approval
from tests.providers.qbo_fixtures import CONFIG, FakeQbo, connect_store, customer_row

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
CLIENTS = {
    "cl-acme": ("Acme Corp", "ap@acme.example"),
    "cl-globex": ("Globex Corporation", "ap@globex.example"),
}


@pytest.fixture
def company(app: Any, live_server: str) -> Iterator[FakeQbo]:
    app.config.update(CONFIG)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru(live_server)
        fake = FakeQbo(rsps, company_name="Acme Books Inc")
        fake.customers = {
            "1": customer_row("1", "Bill's Windsurf Shop", email="bill@windsurf.example"),
            "2": customer_row("2", "Globex Corporation", email="ap@globex.example"),
            "3": customer_row("3", "Acme Corp", email="ap@acme.example"),
        }
        yield fake


def test_provider_switch_remap_screen_map_every_exact_match_then_drafts(
    page: Any, app: Any, workspace: Any, make_admin: Any, post_event: Any, company: FakeQbo
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    map_clients_locally(workspace.id, CLIENTS)
    post_event(workspace, week_approval("ts-ada", "u-ada", {"cl-acme": 60, "cl-globex": 30}))

    # The admin connects QuickBooks (the OAuth callback's effect) and the workspace bills there.
    connect_store(workspace.id, app)
    with db.session_scope() as s:
        s.get(Workspace, workspace.id).provider = "quickbooks"
    pipeline.on_connection_restored(workspace.id)
    post_event(workspace, week_approval("ts-bob", "u-bob", {"cl-acme": 90}))
    assert company.invoices == {}  # never the ledger's customer ids in QuickBooks

    page.goto(f"/workspaces/{workspace.id}/drafts")
    sign_in(page, "ada@example.com", PASSWORD)
    page.wait_for_url(f"**/workspaces/{workspace.id}/drafts")
    held = page.locator("#held + p + div tr[data-draft-id]")
    assert held.count() == 1
    shot(page, "books-01-drafts-held-after-switch")

    page.goto(f"/workspaces/{workspace.id}/mappings")
    banner = page.locator("#remap")
    assert "This workspace now bills to QuickBooks company" in banner.inner_text()
    assert page.locator("tr[data-history-id]").count() == 2
    assert "in the built-in ledger" in page.locator("tr[data-tracker-id='cl-acme']").inner_text()
    shot(page, "books-02-remap-screen")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "books-03-remap-screen-390")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("button", name="Map every exact match").click()
    page.wait_for_load_state()
    assert "Mapped 2 exact match(es)" in page.locator("body").inner_text()
    assert page.locator("#remap").count() == 0  # nothing left to re-map ...
    assert page.locator("tr[data-history-id]").count() == 2  # ... the history stays visible
    shot(page, "books-04-mapped")

    page.get_by_role("link", name="Drafts", exact=True).click()
    page.wait_for_url("**/drafts")
    rows = page.locator("tr[data-invoice-id]")
    # The ledger's two invoices of Ada's week, and Bob's week now in QuickBooks (Acme Corp = 3).
    assert rows.count() == 3
    assert [inv["CustomerRef"]["value"] for inv in company.invoices.values()] == ["3"]
    assert "Open in QuickBooks Online" in page.locator("tbody").inner_text()
    shot(page, "books-05-drafts-invoices")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "books-06-drafts-invoices-390")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

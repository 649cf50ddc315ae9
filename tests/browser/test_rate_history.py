"""After a move from the built-in ledger to a QuickBooks company, in Chromium at 1280 and 390 px
(tests/artifacts/screenshots/rates-*): the ledger's customer rate is listed apart as history,
named by its books, with no way to change it; the Customers page's history names the client."""

from __future__ import annotations

from typing import Any

import pytest

from connector import db, pipeline
from connector.models import Workspace
from mappings import rates
from tests.browser.conftest import shot, sign_in
from tests.browser.test_books_switch import CLIENTS, PASSWORD, company
from tests.helpers import map_clients_locally
from tests.invoices.test_invoice_records import week_approval
from tests.providers.qbo_fixtures import connect_store

pytestmark = pytest.mark.browser
__all__ = ["company"]  # the fixture: a QuickBooks company on the wire


def test_rates_of_the_old_books_are_read_only_history(
    page: Any, app: Any, workspace: Any, make_admin: Any, post_event: Any, company: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    ids = map_clients_locally(workspace.id, CLIENTS)
    with db.session_scope() as s:
        rates.create_rate(s, workspace.id, {"amount": "100.00", "currency": "USD"})
        rates.create_rate(
            s, workspace.id, {"amount": "200.00", "currency": "USD", "customer_id": ids["cl-acme"]}
        )
    post_event(workspace, week_approval("ts-ada", "u-ada", {"cl-acme": 60, "cl-globex": 30}))
    connect_store(workspace.id, app)
    with db.session_scope() as s:
        s.get(Workspace, workspace.id).provider = "quickbooks"
    pipeline.on_connection_restored(workspace.id)

    page.goto(f"/workspaces/{workspace.id}/rates")
    sign_in(page, "ada@example.com", PASSWORD)
    page.wait_for_url(f"**/workspaces/{workspace.id}/rates")
    history = page.locator("tr[data-history-rate-id]")
    assert history.count() == 1
    text = history.inner_text()
    assert "Acme Corp" in text and "200.00 USD/h" in text and "the built-in ledger" in text
    assert history.get_by_role("link").count() == 0 and history.get_by_role("button").count() == 0
    assert "200.00" not in page.locator("table").first.inner_text()  # not among the applied
    shot(page, "rates-01-history-after-switch")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#rate-history").scroll_into_view_if_needed()
    shot(page, "rates-02-history-390")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/workspaces/{workspace.id}/mappings#history")
    row = page.locator("tr[data-history-id]").first
    assert row.locator("th").inner_text().splitlines()[0] in ("Acme Corp", "Globex Corporation")
    page.locator("#history").scroll_into_view_if_needed()
    shot(page, "rates-03-mapping-history-names")

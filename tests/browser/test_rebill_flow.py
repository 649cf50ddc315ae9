"""Issue #9 item 5 in real headless Chromium: a created draft survives a mapping change (the
page says the change applies to future approvals); Re-bill asks first, saying what follows,
then withdraws the draft and bills the approval again. Built-in ``local`` provider."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from connector import db
from connector.models import LocalInvoice
from tests.admin.events import add_local_customer, approval
from tests.browser.conftest import shot, sign_in

pytestmark = pytest.mark.browser


def ledger() -> list[tuple[str, str]]:
    with db.new_session() as s:
        rows = s.scalars(select(LocalInvoice).order_by(LocalInvoice.id))
        return [(r.customer_name, r.state) for r in rows]


def test_mapping_change_leaves_the_draft_and_rebill_replaces_it(
    page: Any, workspace: Any, make_admin: Any, post_event: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password="correct horse battery")
    add_local_customer(workspace.id, "Globex Corporation", "billing@globex.example")
    add_local_customer(workspace.id, "Globex Holdings")
    ws = f"/workspaces/{workspace.id}"
    assert post_event(workspace, approval()).status_code == 202

    page.goto(f"{ws}/mappings/client/cl1")
    sign_in(page, "ada@example.com", "correct horse battery")
    page.wait_for_url(f"**{ws}/mappings/client/cl1")
    page.get_by_role("button", name="Bill client Globex to Globex Corporation").click()
    page.wait_for_url(f"**{ws}/mappings")
    assert ledger() == [("Globex Corporation", "draft")]

    # Remap to another customer: the created draft stays, and the page says so.
    page.goto(f"{ws}/mappings/client/cl1?q=Holdings")
    page.get_by_role("button", name="Bill client Globex to Globex Holdings").click()
    page.wait_for_url(f"**{ws}/mappings")
    status = page.get_by_role("status").first.inner_text()
    assert "applies to future approvals" in status and "Re-bill" in status
    assert ledger() == [("Globex Corporation", "draft")]  # no second draft for the same hours
    shot(page, "rebill-01-mapping-notice")

    page.goto(f"{ws}/approvals")
    page.locator("h2 a[href*='/approvals/']").first.click()
    page.wait_for_url(f"**{ws}/approvals/*")
    page.get_by_role("link", name="Re-bill…").click()
    assert page.get_by_role("heading", name="Re-bill").first.is_visible()
    body = page.content()
    assert "deleted" in body and "left alone and flagged" in body and "Globex Corporation" in body
    shot(page, "rebill-02-confirm")
    assert ledger() == [("Globex Corporation", "draft")]  # opening the page changed nothing

    page.get_by_role("button", name="Withdraw these drafts and re-bill").click()
    page.wait_for_url(f"**{ws}/approvals/*")
    assert "Re-billing this approval" in page.get_by_role("status").first.inner_text()
    assert ledger() == [("Globex Corporation", "deleted"), ("Globex Holdings", "draft")]
    assert page.locator("tr[data-status='drafted']").count() == 1
    assert "Globex Holdings" in page.locator("tr[data-status='drafted']").inner_text()
    shot(page, "rebill-03-rebilled")

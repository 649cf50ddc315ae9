"""The console in real headless Chromium: sign in, see the held approval, accept the suggested
customer, and watch the draft appear with its link. Screenshots go to tests/artifacts/screenshots/.

The accounting side is the built-in ``local`` provider (no outside HTTP to mock); the Stripe key
form is only checked to be present on the connections page.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.models import DraftStatus
from tests.admin.events import add_local_customer, approval, live_drafts
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser


def test_held_approval_becomes_a_draft_after_one_click(
    page: Any, workspace: Any, make_admin: Any, post_event: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password="correct horse battery")
    customer_id = add_local_customer(workspace.id, "Globex Corporation", "billing@globex.example")
    ws = f"/workspaces/{workspace.id}"

    # Anonymous: sent to the sign-in page, then back where we wanted to go.
    page.goto(f"{ws}/connections")
    assert "/login" in page.url
    shot(page, "01-login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{ws}/connections")
    assert page.get_by_role("heading", name="Connections").is_visible()
    assert page.get_by_label("Stripe restricted key").is_visible()
    shot(page, "02-connections")

    # An approval arrives for a client nobody mapped yet: it is held, with the fix offered.
    assert post_event(workspace, approval()).status_code == 202
    page.goto(f"{ws}/approvals")
    held = page.locator("tr[data-status='needs_mapping']")
    assert held.count() == 1
    assert "not mapped to a customer" in held.inner_text()
    shot(page, "03-approvals-held")

    held.get_by_role("link", name="Map client Globex to a customer").click()
    page.wait_for_url(f"**{ws}/mappings/client/cl1**")
    shot(page, "04-mapping-suggestion")
    page.get_by_role("button", name="Bill client Globex to Globex Corporation").click()
    # Back on the approval the fix started from, told what happened.
    page.wait_for_url(f"**{ws}/approvals/*")
    assert (
        page.get_by_role("status")
        .first.inner_text()
        .startswith("Client Globex is now billed to Globex Corporation")
    )
    shot(page, "05-back-on-the-approval")

    # The hold released itself: a drafted draft with its link, nobody pressed retry.
    page.goto(f"{ws}/approvals")
    drafted = page.locator("tr[data-status='drafted']")
    assert drafted.count() == 1
    assert "55.00 USD" in drafted.inner_text()
    [draft] = live_drafts(workspace.id)
    assert draft.status == DraftStatus.DRAFTED and draft.customer_id == customer_id
    href = drafted.get_by_role("link", name="Open draft in Built-in ledger").get_attribute("href")
    assert href.endswith(f"{ws}/ledger/{draft.provider_id}")
    shot(page, "06-approvals-drafted")

    # The local ledger's deep link (PUBLIC_BASE_URL is the test host, so open its path here).
    page.goto(href.split("invoicer.test", 1)[-1])
    assert page.get_by_role("heading", name="Draft invoice").is_visible()
    assert "Globex Corporation" in page.content()
    shot(page, "07-ledger-invoice")

    # Keyboard users see where they are: the focus outline is drawn.
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"

"""The console as a new user meets it, in real headless Chromium, with screenshots of each step
(tests/artifacts/screenshots/first-run-*, narrow-*):

- from an admin with no workspace (the one CLI call) to a drafted invoice, only through pages
  (the test plays WebWork by sending the signed approval to the webhook URL the page shows);
- fix-and-return, with "re-billing..." replaced without a reload once the re-bill is done;
- the Drafts page with its filters and totals;
- a destructive action's confirmation;
- every page at 390 px without sideways scrolling.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import update

from connector import db
from connector.models import Job, JobState
from tests.admin.events import add_local_customer, approval, live_drafts
from tests.app_fixtures import signed_headers
from tests.browser.conftest import shot, sign_in

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def send_approval(live_server: str, webhook_url: str, secret: str, event: dict) -> int:
    """What WebWork does: POST the signed event to the webhook URL (its path on this server)."""
    body = json.dumps(event).encode()
    path = "/webhooks/" + webhook_url.split("/webhooks/", 1)[1]
    response = requests.post(
        live_server + path, data=body, headers=signed_headers(secret, body), timeout=10
    )
    return response.status_code


def step_state(page: Any, key: str) -> str:
    return page.locator(f"li[data-step='{key}']").get_attribute("data-state")


def test_first_run_from_a_new_admin_to_a_drafted_invoice(
    page: Any, live_server: str, make_admin: Any
) -> None:
    make_admin(email="new@example.com", password=PASSWORD)  # the only CLI step: admins create
    page.goto("/")
    sign_in(page, "new@example.com", PASSWORD)
    page.wait_for_url("**/workspaces/new")
    shot(page, "first-run-01-new-workspace")

    # Every field's error at once.
    page.get_by_role("button", name="Create workspace").click()
    expect(page.locator("#name-error")).to_be_visible()
    expect(page.locator("#tracker-error")).to_be_visible()
    shot(page, "first-run-02-errors")

    page.get_by_label("Workspace name").fill("Acme Consulting")
    # The trackers registered are offered; WebWork is the default.
    assert page.get_by_label("Time tracker").input_value() == "webwork"
    page.get_by_label("Time tracker").select_option("webwork")
    page.get_by_label("The tracker's workspace id").fill("4242")
    page.get_by_role("button", name="Create workspace").click()
    webhook_url = page.locator("#webhook-url").inner_text()
    secret = page.locator("#signing-secret").inner_text()
    assert secret.startswith("whsec_")
    shot(page, "first-run-03-created")

    page.get_by_role("link", name="Continue to the checklist").click()
    expect(page.get_by_role("heading", name="Set up this workspace")).to_be_visible()
    assert step_state(page, "tracker") == "todo"
    assert step_state(page, "auto") == "todo"
    shot(page, "first-run-04-checklist")

    page.get_by_role("button", name="Switch automatic invoicing on").click()
    expect(page.locator("li[data-step='auto']")).to_have_attribute("data-state", "done")

    # WebWork sends the first approval: the tracker step is done, a customer is missing.
    assert send_approval(live_server, webhook_url, secret, approval()) == 202
    page.reload()
    assert step_state(page, "tracker") == "done"
    assert step_state(page, "mapping") == "todo"
    assert "Website" in page.locator("li[data-step='mapping']").inner_text()
    shot(page, "first-run-05-mapping-todo")

    # Create the customer in the built-in ledger and map the client, all from the page.
    page.locator("li[data-step='mapping']").get_by_role("link", name="Map customers").click()
    page.get_by_role("link", name="Edit mapping of Globex").click()
    page.get_by_role("button", name="Create and map").click()
    page.wait_for_url("**/mappings")
    assert "Created Globex and billed client Globex to it" in page.content()

    page.get_by_role("link", name="Acme Consulting").click()
    page.wait_for_url(re.compile(r"/workspaces/\d+$"))
    # Every step done: the checklist gives way to the overview.
    assert page.get_by_role("heading", name="Set up this workspace").count() == 0
    shot(page, "first-run-06-done")

    page.get_by_role("link", name="Drafts", exact=True).click()
    page.wait_for_url("**/drafts")
    drafted = page.locator("tr[data-status='drafted']")
    assert drafted.count() == 1
    assert "55.00 USD" in drafted.inner_text() and "2 h" in drafted.inner_text()
    assert drafted.get_by_role("link", name="Open in Built-in ledger").is_visible()
    shot(page, "first-run-07-drafts")


def test_fix_and_return_shows_rebilling_until_done(
    page: Any, workspace: Any, make_admin: Any, post_event: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    add_local_customer(workspace.id, "Globex Corporation", "billing@globex.example")
    assert post_event(workspace, approval(rate=None)).status_code == 202  # no rate anywhere
    [held] = live_drafts(workspace.id)
    ws = f"/workspaces/{workspace.id}"
    page.goto(f"{ws}/approvals/{held.timesheet_pk}")
    sign_in(page, "ada@example.com", PASSWORD)
    page.wait_for_url(f"**{ws}/approvals/{held.timesheet_pk}")

    # Map the client from the hold; back on the approval, now held for a rate.
    page.get_by_role("link", name="Map client Globex to a customer").click()
    page.get_by_role("button", name="Bill client Globex to Globex Corporation").click()
    page.wait_for_url(f"**{ws}/approvals/{held.timesheet_pk}")
    assert "is now billed to Globex Corporation" in page.get_by_role("status").first.inner_text()
    row = page.locator("tr[data-status='needs_rate']")
    assert row.count() == 1
    shot(page, "fix-01-back-needs-rate")

    # A re-bill is queued (a worker has not picked it up yet): the stale hold text gives way.
    with db.session_scope() as s:
        from webhooks.inbox import new_job

        job = new_job(workspace.id, "bill_timesheet", timesheet_pk=held.timesheet_pk)
        s.add(job)
        s.flush()
        job_id = job.id
    page.reload()
    busy = page.locator("tr[data-rebilling='1']")
    assert busy.count() == 1
    assert "Re-billing" in busy.inner_text()
    assert "no hourly rate" not in busy.inner_text()
    assert busy.get_by_role("link").count() == 0  # no fix buttons while it runs
    shot(page, "fix-02-rebilling")

    # The worker finishes: the row updates by itself (no reload, no navigation).
    url_before = page.url
    with db.session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(state=JobState.DONE))
    page.locator("tr[data-rebilling='1']").wait_for(state="detached", timeout=15000)
    assert page.url == url_before
    assert "no hourly rate" in page.locator("tr[data-status='needs_rate']").inner_text()
    shot(page, "fix-03-updated-in-place")

    # Add the rate from the hold's button: back on the approval, drafted.
    page.get_by_role("link", name=re.compile("Add a rate for Mia Member")).click()
    page.get_by_label("Amount per hour").fill("80")
    page.get_by_role("button", name=re.compile("Add rate|Save")).click()
    page.wait_for_url(f"**{ws}/approvals/{held.timesheet_pk}")
    assert page.locator("tr[data-status='drafted']").count() == 1
    shot(page, "fix-04-drafted")


def test_drafts_page_filters_and_totals(
    page: Any, workspace: Any, make_admin: Any, post_event: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    add_local_customer(workspace.id, "Globex Corporation", "billing@globex.example")
    with db.session_scope() as s:
        from mappings.service import set_mapping

        set_mapping(
            s, workspace.id, kind="client", tracker_id="cl1", customer_id="1",
            customer_name="Globex Corporation", customer_currency="USD",
        )  # fmt: skip
    for n in range(3):
        post_event(workspace, approval(f"ts-{n}", total_minutes=60 * (n + 1)))
    post_event(
        workspace, approval("ts-held", project_id="p9", client={"id": "c9", "name": "Hooli"})
    )
    page.goto(f"/workspaces/{workspace.id}/drafts")
    sign_in(page, "ada@example.com", PASSWORD)
    page.wait_for_url(f"**/workspaces/{workspace.id}/drafts")
    # One row per invoice (three), the held approval below them (no invoice yet).
    assert page.locator("tbody tr[data-invoice-id]").count() == 3
    assert page.locator("tbody tr[data-draft-id]").count() == 1
    assert page.locator("dd[data-currency='USD']").inner_text() == "165.00 USD"
    shot(page, "drafts-01-all")
    page.get_by_label("Status").select_option("held")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**status=held**")
    assert page.locator("tbody tr[data-draft-id]").count() == 1
    assert "No customer yet" in page.locator("tbody tr[data-draft-id]").inner_text()
    shot(page, "drafts-02-held")


def test_destructive_action_confirms_and_says_what_follows(
    page: Any, workspace: Any, make_admin: Any, post_event: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    add_local_customer(workspace.id, "Globex Corporation", "billing@globex.example")
    with db.session_scope() as s:
        from mappings.service import set_mapping

        set_mapping(
            s, workspace.id, kind="client", tracker_id="cl1", customer_id="1",
            customer_name="Globex Corporation",
        )  # fmt: skip
    post_event(workspace, approval("ts-1"))
    post_event(workspace, approval("ts-2"))
    page.goto(f"/workspaces/{workspace.id}/mappings")
    sign_in(page, "ada@example.com", PASSWORD)
    page.wait_for_url(f"**/workspaces/{workspace.id}/mappings")
    page.get_by_role("button", name="Remove mapping of Globex").click()
    page.wait_for_url("**/mappings/remove")
    expect(page.get_by_role("heading", name=re.compile("Remove the mapping"))).to_be_visible()
    assert "2 draft(s) were created with this mapping; they stay as they are." in page.content()
    shot(page, "confirm-01-remove-mapping")
    page.get_by_role("link", name="Cancel, keep it").click()
    page.wait_for_url("**/mappings")
    assert "Globex Corporation" in page.locator("tr[data-tracker-id='cl1']").inner_text()
    page.get_by_role("button", name="Remove mapping of Globex").click()
    page.get_by_role("button", name="Remove the mapping").click()
    page.wait_for_url("**/mappings")
    said = page.get_by_role("status").first.inner_text()
    assert "Removed the mapping of client Globex." in said
    assert "This change applies to future approvals." in said
    shot(page, "confirm-02-removed")


NARROW_PAGES = (
    "",
    "/approvals",
    "/drafts",
    "/mappings",
    "/mappings/client/cl1",
    "/rates",
    "/connections",
    "/deliveries",
    "/settings",
    "/tokens",
    "/signing-secret",
    "/approvals/{ts}",
    "/deliveries/1",
    "/nothing-here",
)


def test_every_page_fits_390px_without_sideways_scrolling(
    page: Any, workspace: Any, make_admin: Any, post_event: Any
) -> None:
    make_admin(workspace, email="a-rather-long-admin-address@agency-with-a-long-name.example",
               password=PASSWORD)  # fmt: skip
    long_name = "Globex Corporation International Holdings (Europe, Middle East and Africa)"
    post_event(
        workspace,
        approval(client={"id": "cl1", "name": long_name, "email": "ap@globex.example"}),
    )
    [held] = live_drafts(workspace.id)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/workspaces/{workspace.id}")
    sign_in(page, "a-rather-long-admin-address@agency-with-a-long-name.example", PASSWORD)
    page.wait_for_url(f"**/workspaces/{workspace.id}")
    wide = []
    for path in NARROW_PAGES:
        page.goto(f"/workspaces/{workspace.id}" + path.format(ts=held.timesheet_pk))
        width = page.evaluate("document.documentElement.scrollWidth")
        name = path.strip("/").replace("/", "-").replace("{ts}", "x") or "overview"
        shot(page, f"narrow-{name}")
        if width > 390:
            wide.append((path, width))
    assert wide == [], f"pages wider than 390 px: {wide}"

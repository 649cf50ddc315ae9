"""End to end in headless Chromium and at the wire: connect Xero through the console (consent,
organisation picker), create the customers from the mapping page, a three-customer approval ->
three DRAFT invoices right to the cent, a per-period week, a withdrawal, and a status webhook ->
the invoice's provider status. Screenshots (1280 and 390 px) in tests/artifacts/screenshots/."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from connector import db
from connector.models import Draft, DraftStatus
from connector.providers.xero.events import sign
from tests.browser.conftest import shot, sign_in
from tests.consolidation.helpers import approval, set_consolidation, withdrawal
from tests.helpers import THREE_CUSTOMERS, event
from tests.providers.xero import fake_xero_api
from tests.providers.xero.fake_xero import CONFIG, FakeXero

pytestmark = pytest.mark.browser

EXPECTED = {"Globex Corporation": "265.84", "Initech": "856.58", "Umbrella Ltd": "202.00"}


def consent(fake: FakeXero, tenants: tuple[str, ...]) -> Any:
    """Xero's consent screen: the admin ticks these organisations and is sent back."""

    def handle(route: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(route.request.url).query).items()}
        code = fake.grant(tenants, code=f"code-{len(fake.codes)}-{query['state'][:6]}")
        back = f"{query['redirect_uri']}?code={code}&state={query['state']}"
        route.fulfill(status=302, headers={"Location": back})

    return handle


def both_widths(page: Any, name: str) -> None:
    shot(page, f"xero-{name}-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, f"xero-{name}-390")
    # Nothing wider than the phone's screen (tables become stacked rows).
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    page.set_viewport_size({"width": 1280, "height": 900})


def connect_through_the_console(page: Any, ws: str, fake: FakeXero, other_tenant: str) -> None:
    """The consent covered two organisations, so the picker asks which one."""
    page.route("https://login.xero.com/**", consent(fake, (other_tenant, fake.tenant)))
    page.goto(f"{ws}/connections")
    sign_in(page, "ada@example.com", "correct horse battery")
    page.wait_for_url(f"**{ws}/connections")
    both_widths(page, "connections-before")
    page.get_by_role("link", name="Connect Xero", exact=True).click()
    page.wait_for_url(f"**{ws}/connections/xero/organisation")
    assert page.get_by_role("heading", name="Choose the Xero organisation").is_visible()
    both_widths(page, "organisation-picker")
    page.get_by_label("Tsi Demo (NZ)").check()
    page.get_by_role("button", name="Connect this organisation").click()
    page.wait_for_url(f"**{ws}/connections")
    assert "Xero connected: Tsi Demo (NZ)" in page.content()
    both_widths(page, "connections-connected")


def create_customers_from_the_mapping_page(page: Any, ws: str, fake: FakeXero) -> None:
    for client_id, (name, email) in THREE_CUSTOMERS.items():
        page.goto(f"{ws}/mappings/client/{client_id}")
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Billing email").fill(email)
        page.get_by_role("button", name="Create and map").click()
        page.wait_for_load_state()
        assert f"Created {name}" in page.content(), page.content()
    shot(page, "xero-mapped")
    contacts = {c["Name"]: c for c in fake.contacts.values()}
    assert set(contacts) == set(EXPECTED)
    assert {c["DefaultCurrency"] for c in contacts.values()} == {"USD"}


def test_xero_end_to_end_through_the_console(
    page: Any,
    live_server: str,
    app: Any,
    workspace: Any,
    make_admin: Any,
    post_event: Any,
    client: Any,
    fake: FakeXero,
):
    app.config.update({k: v for k, v in CONFIG.items() if k != "PUBLIC_BASE_URL"})
    app.config["PUBLIC_BASE_URL"] = live_server  # Xero sends the browser back here
    au = fake.add_org("c5e4d3f2-0a8b-4c3d-9e4f-2a3b4c5d6e7f", "Tsi Demo (AU)", base_currency="AUD")
    make_admin(workspace, email="ada@example.com", password="correct horse battery")
    ws = f"/workspaces/{workspace.id}"

    connect_through_the_console(page, ws, fake, au.tenant_id)
    # 2. A three-customer approval is held (nobody mapped); the customers are created from the
    #    mapping page, each in the currency its rows are priced in.
    assert post_event(workspace, event("timesheet_approved__three_customers")).status_code == 202
    create_customers_from_the_mapping_page(page, ws, fake)

    # 3. Three DRAFT invoices, right to the cent, with the links in the console.
    invoices = {inv["Contact"]["Name"]: inv for inv in fake.invoices_of()}
    assert {n: f"{Decimal(str(i['Total'])):.2f}" for n, i in invoices.items()} == EXPECTED
    assert {i["Status"] for i in invoices.values()} == {"DRAFT"}
    page.goto(f"{ws}/approvals")
    assert page.locator("tr[data-status='drafted']").count() == 1 or "drafted" in page.content()
    shot(page, "xero-approvals")

    # 4. A status webhook: finance approved Globex's invoice in Xero.
    globex = invoices["Globex Corporation"]["InvoiceID"]
    fake_xero_api.approve(fake, globex)
    body = json.dumps(
        {
            "events": [
                {
                    "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{globex}",
                    "resourceId": globex,
                    "eventDateUtc": "2026-05-04T09:15:39.902",
                    "eventType": "UPDATE",
                    "eventCategory": "INVOICE",
                    "tenantId": fake.tenant,
                    "tenantType": "ORGANISATION",
                }
            ],
            "firstEventSequence": 9,
            "lastEventSequence": 9,
            "entropy": "ABCDEFGHIJKLMNOPQRST",
        }
    ).encode()
    answer = client.post(
        "/webhooks/xero",
        data=body,
        headers={"x-xero-signature": sign(CONFIG["XERO_WEBHOOK_KEY"], body)},
    )
    assert answer.status_code == 200
    db.session.expire_all()
    status = db.session.scalar(select(Draft.provider_status).where(Draft.provider_id == globex))
    assert status == "sent"

    # 5. A per-period week for Acme: two members' approvals, one DRAFT invoice; then a withdrawal.
    acme = fake.add_contact("Acme Corp", currency="USD")
    from tests.providers.xero.conftest import map_client

    map_client(workspace.id, "cl-acme", acme, "Acme Corp", "USD")
    set_consolidation(workspace.id)
    post_event(workspace, approval("ts-1", "u-ada", {date(2026, 11, 23): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {date(2026, 11, 25): 30}))
    (week,) = [i for i in fake.invoices_of() if i["Contact"]["ContactID"] == acme]
    assert Decimal(str(week["Total"])) == Decimal("41.25") and len(week["LineItems"]) == 2

    post_event(workspace, withdrawal("ts-2"))
    week = fake.invoices[week["InvoiceID"]]
    assert Decimal(str(week["Total"])) == Decimal("27.5") and len(week["LineItems"]) == 1
    db.session.expire_all()
    statuses = [
        r.status
        for r in db.session.scalars(
            select(Draft).where(Draft.customer_id == acme).order_by(Draft.id)
        )
    ]
    assert statuses == [DraftStatus.DRAFTED, DraftStatus.VOIDED]
    page.goto(f"{ws}/connections")
    assert re.search(r"Tsi Demo \(NZ\)", page.content())

"""Issue #9 item 7: a new customer takes the currency its client's billable rows are priced in
(seen in approvals), else the workspace default, so its drafts are not held as a mismatch."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import responses
from sqlalchemy import select

from connector import db
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import CustomerMapping, Draft, LocalCustomer, Workspace
from tests.app_fixtures import csrf_token
from tests.helpers import event

APPROVED = "timesheet_approved__three_customers"
TS_ID = "ts_8f3a2c9e1b"
PRICES = {"cl-globex": None, "cl-initech": ("95.00", "EUR"), "cl-umbrella": ("12000", "JPY")}


def three_currencies() -> dict[str, Any]:
    """The sample approval with Initech priced in EUR and Umbrella in JPY (Globex stays USD)."""
    doc = event(APPROVED)
    for rows in doc["data"]["timesheet"]["daily_breakdown"].values():
        for row in rows:
            price = PRICES.get((row.get("client") or {}).get("id"))
            if price:
                row["rate"] = {"amount": price[0], "currency": price[1]}
    return doc


def mapped_currencies(workspace_id: int) -> dict[str, str | None]:
    db.session.expire_all()
    return {
        m.tracker_id: m.customer_currency
        for m in db.session.scalars(
            select(CustomerMapping).where(CustomerMapping.workspace_id == workspace_id)
        )
    }


def test_readme_walkthrough_with_usd_eur_and_jpy_clients_gives_a_draft_for_each(
    app, workspace, post_event, client
):
    post_event(workspace, three_currencies())
    res = app.test_cli_runner().invoke(args=["mappings", "create-customers", str(workspace.id)])
    assert res.exit_code == 0, res.output

    assert {c.name: c.currency for c in db.session.scalars(select(LocalCustomer))} == {
        "Globex Corporation": "USD",
        "Initech": "EUR",
        "Umbrella Ltd": "JPY",
    }
    drafts = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=workspace.auth).json["drafts"]
    got = {d["customer"]["name"]: (d["status"], d["currency"], d["total"]) for d in drafts}
    assert got == {
        "Globex Corporation": ("drafted", "USD", "265.84"),
        "Initech": ("drafted", "EUR", "856.58"),  # 541 min x 95 / 60
        "Umbrella Ltd": ("drafted", "JPY", "20200"),  # 101 min x 12000 / 60
    }


def test_without_priced_rows_a_new_customer_takes_the_workspace_default(
    app, make_workspace, post_event
):
    ws = make_workspace()
    with db.session_scope() as s:
        row = s.get(Workspace, ws.id)
        row.settings = {**(row.settings or {}), "default_currency": "CAD"}
    doc = event(APPROVED)
    for rows in doc["data"]["timesheet"]["daily_breakdown"].values():
        for r in rows:
            r.pop("rate", None)  # priced by nothing yet: no currency to learn
    post_event(ws, doc)
    res = app.test_cli_runner().invoke(args=["mappings", "create-customers", str(ws.id)])
    assert res.exit_code == 0, res.output
    assert set(mapped_currencies(ws.id).values()) == {"CAD"}


STRIPE = "https://api.stripe.com"


def test_stripe_customers_created_by_the_cli_keep_their_currency(app, make_workspace, post_event):
    """Stripe has no currency on a new customer: the mapping keeps the one it was created for,
    so the drafts go out in EUR and JPY instead of being held as a currency mismatch."""
    ws = make_workspace(provider="stripe")
    DbCredentialStore(ws.id, "stripe", secret_box(app.config)).connect(
        {"method": "api_key", "api_key": "rk_test_51TestKeyForTheConnectorabcd"},
        account_id="acct_1Test",
        environment="test",
    )
    post_event(ws, three_currencies())
    names: dict[str, str] = {}

    def create_customer(request: Any) -> Any:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        cid = f"cus_{len(names) + 1}"
        names[cid] = form["name"]
        body = {"id": cid, "object": "customer", "name": form["name"], "currency": None}
        return (200, {}, json.dumps(body))

    def get_customer(request: Any) -> Any:
        cid = request.url.rsplit("/", 1)[1]
        body = {"id": cid, "object": "customer", "name": names[cid], "currency": None}
        return (200, {}, json.dumps(body))

    invoice_currencies: list[str] = []

    def create_invoice(request: Any) -> Any:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        invoice_currencies.append(form["currency"])
        error = {"error": {"type": "api_error", "message": "try later"}}
        return (500, {}, json.dumps(error))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback("POST", f"{STRIPE}/v1/customers", callback=create_customer)
        rsps.add_callback(
            "GET", re.compile(rf"{STRIPE}/v1/customers/cus_\d+"), callback=get_customer
        )
        rsps.add_callback("POST", f"{STRIPE}/v1/invoices", callback=create_invoice)
        res = app.test_cli_runner().invoke(args=["mappings", "create-customers", str(ws.id)])
    assert res.exit_code == 0, res.output

    assert mapped_currencies(ws.id) == {
        "cl-globex": "USD",
        "cl-initech": "EUR",
        "cl-umbrella": "JPY",
    }
    assert sorted(invoice_currencies) == ["eur", "jpy", "usd"]
    statuses = {
        d.customer_name: (d.status, d.currency)
        for d in db.session.scalars(select(Draft).where(Draft.status != "superseded"))
    }
    assert statuses == {
        "Globex Corporation": ("pending", "USD"),
        "Initech": ("pending", "EUR"),
        "Umbrella Ltd": ("pending", "JPY"),
    }  # sent, waiting for Stripe to answer: not held as a currency mismatch
    jpy = db.session.scalars(select(Draft).where(Draft.currency == "JPY")).one()
    assert jpy.total == Decimal("20200")


def test_console_offers_and_uses_the_clients_currency(workspace, post_event, admin_client):
    post_event(workspace, three_currencies())
    page = admin_client.get(f"/workspaces/{workspace.id}/mappings/client/cl-umbrella")
    assert 'name="currency" maxlength="3" value="JPY"' in page.data.decode()

    res = admin_client.post(
        f"/workspaces/{workspace.id}/mappings/create-customer",
        data={
            "kind": "client",
            "tracker_id": "cl-initech",
            "name": "Initech",
            "currency": "",
            "csrf_token": csrf_token(admin_client),
        },
    )
    assert res.status_code == 302
    assert db.session.scalars(select(LocalCustomer)).one().currency == "EUR"
    assert mapped_currencies(workspace.id) == {"cl-initech": "EUR"}


def test_local_customer_without_a_currency_takes_the_workspace_default(app, make_workspace):
    from connector.providers.base import NewCustomer
    from connector.providers.local import LocalProvider

    ws = make_workspace()
    with db.session_scope() as s:
        row = s.get(Workspace, ws.id)
        row.settings = {**(row.settings or {}), "default_currency": "EUR"}
    assert LocalProvider(ws.id).create_customer(NewCustomer(name="Globex")).currency == "EUR"


def test_linking_a_customer_with_no_currency_yet_keeps_the_clients_currency(workspace, post_event):
    """An existing Stripe customer that never had an invoice has no currency either."""
    from connector.providers.base import AccountingCustomer
    from mappings import service

    post_event(workspace, three_currencies())
    unlocked = AccountingCustomer(id="cus_X", name="Umbrella Ltd", currency=None)
    row = service.map_to(
        db.session, workspace.id, kind="client", tracker_id="cl-umbrella", customer=unlocked
    )
    assert row.customer_currency == "JPY"
    locked = AccountingCustomer(id="cus_Y", name="Initech", currency="USD")
    row = service.map_to(
        db.session, workspace.id, kind="client", tracker_id="cl-initech", customer=locked
    )
    assert row.customer_currency == "USD"  # the books' own currency wins (a mismatch is shown)

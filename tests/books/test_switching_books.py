"""Issue #18 item 1 at the wire: mappings belong to the books they were made in.

A customer id names a business in one QuickBooks company, one Stripe account or the built-in
ledger. After the workspace moves to other books no request ever names an id of the old books;
approvals are held ``needs_mapping`` with both books named, old mappings stay as history, "map
every exact match" re-maps in one step, and returning to the old books brings its mappings back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from sqlalchemy import select

from connector import db, pipeline, status_sync
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Draft, Invoice, Workspace
from tests.consolidation.fake_stripe import FakeStripe
from tests.consolidation.helpers import approval, withdrawal
from tests.helpers import map_clients_locally
from tests.providers.qbo_fixtures import CONFIG, FakeQbo, connect_store, customer_row

REALM_A = "9130357766900456"
REALM_B = "4620816365176381599"
DAY = {0: "2026-11-23", 1: "2026-11-24", 2: "2026-11-25"}


def days(n: int, minutes: int = 60) -> dict[Any, int]:
    from datetime import date

    return {date.fromisoformat(DAY[n]): minutes}


def drafts() -> list[Draft]:
    db.session.expire_all()
    return list(db.session.scalars(select(Draft).order_by(Draft.id)))


def api(client: Any, ws: Any, method: str, path: str) -> Any:
    return client.open(f"/api/v1{path}", method=method, headers=ws.auth)


@pytest.fixture
def companies(app: Any) -> Iterator[tuple[FakeQbo, FakeQbo]]:
    """Two QuickBooks companies whose customer ids overlap: "1" is Amy's Bird Sanctuary in A
    and another business in B, where Amy's is "7"."""
    app.config.update(CONFIG)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        a = FakeQbo(rsps, realm=REALM_A, company_name="Company A")
        b = FakeQbo(rsps, realm=REALM_B, company_name="Company B", oauth=False)
        b.customers = {
            "1": customer_row("1", "Bill's Windsurf Shop", email="bill@windsurf.example"),
            "7": customer_row("7", "Amy's Bird Sanctuary", email="Birds@Intuit.com"),
        }
        yield a, b


def connect_qbo(ws: Any, app: Any, realm: str) -> None:
    connect_store(ws.id, app, realm=realm)
    with db.session_scope() as s:
        s.get(Workspace, ws.id).provider = "quickbooks"
    pipeline.on_connection_restored(ws.id)


def bodies_to(company: FakeQbo) -> list[str]:
    """Every request sent to one company, URL and body, as text."""
    return [
        f"{c.request.url} {c.request.body or ''}"
        for c in company.rsps.calls
        if f"/company/{company.realm}/" in c.request.url
    ]


def test_quickbooks_company_a_to_b_never_names_an_id_of_a_and_a_again_brings_a_back(
    app: Any, client: Any, workspace: Any, post_event: Any, companies: Any
) -> None:
    a, b = companies
    connect_qbo(workspace, app, REALM_A)
    res = api(client, workspace, "PUT", "/mappings/client/cl-acme")
    assert res.status_code == 400  # no body: nothing mapped
    res = client.put(
        "/api/v1/mappings/client/cl-acme", json={"customer_id": "1"}, headers=workspace.auth
    )
    assert res.status_code == 200, res.json
    post_event(workspace, approval("ts-1", "u-ada", days(0)))
    (in_a,) = a.invoices.values()
    assert in_a["CustomerRef"]["value"] == "1"

    connect_qbo(workspace, app, REALM_B)  # "reconnect" to another company
    sent_to_b = len(bodies_to(b))
    post_event(workspace, approval("ts-2", "u-bob", days(1)))
    held = [d for d in drafts() if d.status == "needs_mapping"]
    assert len(held) == 1 and held[0].customer_id is None
    assert "Acme Corp was mapped to a customer in QuickBooks company Company A" in (
        held[0].hold_message or ""
    )
    assert "this workspace now bills to QuickBooks company" in held[0].hold_message
    assert b.invoices == {}  # nothing was sent to B for customer "1"
    body = api(client, workspace, "GET", "/mappings").json
    assert body["mappings"] == []  # A's mapping is not B's
    history = api(client, workspace, "GET", "/mappings/history").json["history"]
    assert [(h["tracker_id"], h["customer_id"]) for h in history] == [("cl-acme", "1")]
    assert "Company A" in history[0]["books_name"]

    # The reconcile and a withdrawal of A's invoice never ask B about A's invoice id.
    status_sync.reconcile_workspace(workspace.id, app.config)
    post_event(workspace, withdrawal("ts-1", timestamp="2026-11-30T11:00:00Z"))
    first = drafts()[0]
    assert first.status == "needs_attention"
    assert "Company A" in (first.hold_message or "")
    invoice = db.session.get(Invoice, first.invoice_id)
    assert invoice.needs_attention and invoice.provider_id == in_a["Id"]
    assert a.invoices[in_a["Id"]].get("deleted") is not True  # left alone, in A

    # Map every exact match: the old customer's name finds Amy's in B (id 7, not 1).
    res = api(client, workspace, "POST", "/mappings/exact-matches")
    assert res.status_code == 200, res.json
    assert [(m["tracker_id"], m["customer_id"]) for m in res.json["mapped"]] == [("cl-acme", "7")]
    assert res.json["released"] == 1
    (in_b,) = b.invoices.values()
    assert in_b["CustomerRef"]["value"] == "7"
    for text in bodies_to(b)[sent_to_b:]:
        assert f"'{in_a['Id']}'" not in text and f"/invoice/{in_a['Id']}" not in text
        assert '"CustomerRef": {"value": "1"}' not in text
    assert "CustomerRef" not in json.dumps([c for c in bodies_to(b) if '"value": "1"' in c])

    # Back to A: A's mapping is back, B's is history.
    connect_qbo(workspace, app, REALM_A)
    body = api(client, workspace, "GET", "/mappings").json
    assert [(m["tracker_id"], m["customer_id"]) for m in body["mappings"]] == [("cl-acme", "1")]
    post_event(workspace, approval("ts-3", "u-ada", days(2)))
    created_in_a = [i for i in a.invoices.values() if i["Id"] != in_a["Id"]]
    assert [i["CustomerRef"]["value"] for i in created_in_a] == ["1"]
    assert len(b.invoices) == 1


def test_ledger_to_quickbooks_lists_no_ledger_customer_as_a_quickbooks_one(
    app: Any, client: Any, workspace: Any, post_event: Any, companies: Any
) -> None:
    a, _ = companies
    ids = map_clients_locally(workspace.id, {"cl-acme": ("Amy's Bird Sanctuary", "x@y.example")})
    post_event(workspace, approval("ts-1", "u-ada", days(0)))
    assert drafts()[0].status == "drafted" and drafts()[0].books == "local"

    connect_qbo(workspace, app, REALM_A)
    post_event(workspace, approval("ts-2", "u-bob", days(1)))
    held = drafts()[-1]
    assert held.status == "needs_mapping" and held.customer_id is None
    assert "mapped to a customer in the built-in ledger" in held.hold_message
    assert a.invoices == {}  # never a QuickBooks invoice for the ledger's customer id
    assert api(client, workspace, "GET", "/mappings").json["mappings"] == []
    # "1" is the ledger's Amy and also QuickBooks' own customer "1": settings now speak of the
    # QuickBooks one (its name from the books), never of the ledger's.
    view = api(client, workspace, "GET", f"/customers/{ids['cl-acme']}/settings").json
    assert view["overrides"] == {k: None for k in view["overrides"]}
    from mappings import customer_settings

    with app.app_context():
        assert customer_settings.list_customers(db.session, workspace.id) == []

    # Every exact match in one step: the ledger customer's name is Amy's, "1" in company A.
    res = api(client, workspace, "POST", "/mappings/exact-matches")
    assert [(m["tracker_id"], m["customer_id"]) for m in res.json["mapped"]] == [("cl-acme", "1")]
    (invoice,) = a.invoices.values()
    assert invoice["CustomerRef"]["value"] == "1"


@pytest.fixture
def stripe_wire(app: Any) -> Iterator[tuple[FakeStripe, responses.RequestsMock]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeStripe(rsps), rsps


def connect_stripe(ws: Any, app: Any, account: str, key: str) -> None:
    DbCredentialStore(ws.id, "stripe", secret_box(app.config)).connect(
        {"method": "api_key", "api_key": key},
        account_id=account,
        environment="test",
        meta={"customer_currencies": {"cus_acme_a": "usd", "cus_acme_b": "usd"}},
    )
    with db.session_scope() as s:
        s.get(Workspace, ws.id).provider = "stripe"
    pipeline.on_connection_restored(ws.id)


def test_stripe_account_a_to_b_holds_and_a_again_bills_to_as_customer(
    app: Any, client: Any, workspace: Any, post_event: Any, stripe_wire: Any
) -> None:
    stripe, rsps = stripe_wire
    key_a, key_b = "rk_test_51AccountAkeyforthetests", "rk_test_51AccountBkeyforthetests"
    connect_stripe(workspace, app, "acct_1A", key_a)
    from mappings import service

    with db.session_scope() as s:
        service.set_mapping(
            s,
            workspace.id,
            kind="client",
            tracker_id="cl-acme",
            customer_id="cus_acme_a",
            customer_name="Acme Corp",
            customer_currency="USD",
        )
    post_event(workspace, approval("ts-1", "u-ada", days(0)))
    assert [i["customer"] for i in stripe.live()] == ["cus_acme_a"]

    connect_stripe(workspace, app, "acct_1B", key_b)
    before = len(rsps.calls)
    post_event(workspace, approval("ts-2", "u-bob", days(1)))
    post_event(workspace, withdrawal("ts-1", timestamp="2026-11-30T11:00:00Z"))
    assert drafts()[1].status == "needs_mapping"
    assert "Stripe account acct_1A (test mode)" in drafts()[1].hold_message
    assert "Stripe account acct_1B (test mode)" in drafts()[1].hold_message
    assert drafts()[0].status == "needs_attention"  # its invoice is in account A: left alone
    for call in rsps.calls[before:]:
        assert key_b not in (call.request.headers.get("Authorization") or "") or (
            "cus_acme_a" not in f"{call.request.url} {call.request.body}"
            and stripe.live()[0]["id"] not in call.request.url
        )
    assert len(stripe.live()) == 1  # nothing created, nothing deleted

    connect_stripe(workspace, app, "acct_1A", key_a)  # A again: its mapping is back ...
    ts2 = [d.status for d in drafts() if d.timesheet.timesheet_id == "ts-2"]
    assert sorted(ts2) == ["drafted", "superseded"]  # ... and the held approval is billed there
    post_event(workspace, approval("ts-3", "u-ada", days(2)))
    assert [i["customer"] for i in stripe.live()] == ["cus_acme_a"] * 3


def test_reconnecting_the_same_company_keeps_every_mapping(
    app: Any, client: Any, workspace: Any, post_event: Any, companies: Any
) -> None:
    a, _ = companies
    connect_qbo(workspace, app, REALM_A)
    client.put("/api/v1/mappings/client/cl-acme", json={"customer_id": "1"}, headers=workspace.auth)
    connect_qbo(workspace, app, REALM_A)  # a reconnect (new tokens), same company
    assert len(api(client, workspace, "GET", "/mappings").json["mappings"]) == 1
    post_event(workspace, approval("ts-1", "u-ada", days(0)))
    assert [i["CustomerRef"]["value"] for i in a.invoices.values()] == ["1"]

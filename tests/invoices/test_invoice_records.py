"""Issue #18 items 2-4 at the wire: an invoice is a record of its own.

A per_period week with three members and two customers is two provider documents, and the
service says so: ``GET /api/v1/invoices`` lists exactly two, with every member's lines and
totals equal to the provider's; withdrawing one member's approval leaves the same two with the
others' lines. Needs attention is visible in the lists, filters, overview, metrics and API, and
what a withdrawal learnt about the invoice is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import responses
from sqlalchemy import select

from connector import db
from connector.models import Draft, Invoice, LocalInvoice, Workspace
from tests.consolidation.helpers import set_consolidation, withdrawal
from tests.helpers import map_clients_locally
from tests.providers.qbo_fixtures import CONFIG, FakeQbo, connect_store, customer_row

MEMBERS = {
    "u-ada": "Ada Lovelace",
    "u-bob": "Bob Babbage",
    "u-cy": "Cy Clerk",
}
CLIENTS = {"cl-acme": "Acme Corp", "cl-globex": "Globex Corporation"}
WEEK = [date(2026, 11, 23 + n) for n in range(5)]


def week_approval(ts_id: str, member_id: str, minutes: dict[str, int]) -> dict[str, Any]:
    """One member's week: ``minutes`` per client, on Monday and Tuesday, at 60.00/h."""
    rows = {
        day.isoformat(): [
            {
                "project_id": f"p-{client}",
                "project_name": f"Project of {CLIENTS[client]}",
                "total_minutes": m,
                "billable": True,
                "rate": {"amount": "60.00", "currency": "USD"},
                "client": {"id": client, "name": CLIENTS[client]},
            }
            for client, m in minutes.items()
        ]
        for day in WEEK[:2]
    }
    return {
        "type": "timesheet.approved",
        "timestamp": "2026-11-30T09:00:00Z",
        "data": {
            "workspace_id": "4242",
            "timesheet": {
                "id": ts_id,
                "user_id": member_id,
                "member": {"id": member_id, "name": MEMBERS[member_id]},
                "date_from": WEEK[0].isoformat(),
                "date_to": WEEK[-1].isoformat(),
                "status": "approved",
                "approved_at": "2026-11-30T09:00:00Z",
                "total_minutes": 2 * sum(minutes.values()),
                "daily_breakdown": rows,
            },
        },
    }


def three_members(post_event: Any, ws: Any) -> None:
    post_event(ws, week_approval("ts-ada", "u-ada", {"cl-acme": 60, "cl-globex": 30}))
    post_event(ws, week_approval("ts-bob", "u-bob", {"cl-acme": 90}))
    post_event(ws, week_approval("ts-cy", "u-cy", {"cl-acme": 15, "cl-globex": 45}))


def invoices_api(client: Any, ws: Any, query: str = "") -> dict[str, Any]:
    res = client.get(f"/api/v1/invoices{query}", headers=ws.auth)
    assert res.status_code == 200, res.json
    return res.json


def detail(client: Any, ws: Any, invoice_id: int) -> dict[str, Any]:
    res = client.get(f"/api/v1/invoices/{invoice_id}", headers=ws.auth)
    assert res.status_code == 200, res.json
    return res.json


def members_on(body: dict[str, Any]) -> list[str]:
    return sorted({line["approval"]["member"] for line in body["lines"]})


@pytest.fixture
def qbo(app: Any, workspace: Any) -> Iterator[FakeQbo]:
    app.config.update(CONFIG)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeQbo(rsps)
        fake.customers["2"] = customer_row("2", "Globex Corporation", email="ap@globex.example")
        connect_store(workspace.id, app)
        with db.session_scope() as s:
            s.get(Workspace, workspace.id).provider = "quickbooks"
        for client_id, customer_id in (("cl-acme", "1"), ("cl-globex", "2")):
            res = app.test_client().put(
                f"/api/v1/mappings/client/{client_id}",
                json={"customer_id": customer_id},
                headers=workspace.auth,
            )
            assert res.status_code == 200, res.json
        set_consolidation(workspace.id)
        yield fake


def test_a_per_period_week_of_three_members_is_two_invoices_equal_to_quickbooks(
    client: Any, workspace: Any, post_event: Any, qbo: FakeQbo
) -> None:
    three_members(post_event, workspace)

    body = invoices_api(client, workspace)
    assert body["total"] == 2 and len(qbo.invoices) == 2
    by_customer = {inv["customer"]["name"]: inv for inv in body["invoices"]}
    assert set(by_customer) == {"Amy's Bird Sanctuary", "Globex Corporation"}
    for inv in body["invoices"]:
        at_qbo = qbo.invoices[inv["provider_id"]]
        assert Decimal(inv["total"]) == Decimal(str(at_qbo["TotalAmt"]))
        assert inv["status"] == "drafted" and inv["mode"] == "per_period"
    acme = detail(client, workspace, by_customer["Amy's Bird Sanctuary"]["id"])
    globex = detail(client, workspace, by_customer["Globex Corporation"]["id"])
    assert members_on(acme) == ["Ada Lovelace", "Bob Babbage", "Cy Clerk"]
    assert members_on(globex) == ["Ada Lovelace", "Cy Clerk"]
    assert acme["total"] == "330.00"  # (120 + 180 + 30) minutes at 60.00/h
    assert globex["total"] == "150.00"
    assert body["totals"] == {"USD": "480.00"}
    # The private note names each approval once and records each key once.
    note = qbo.invoices[acme["provider_id"]]["PrivateNote"]
    for ts_id in ("ts-ada", "ts-bob", "ts-cy"):
        assert note.count(f"{ts_id} (") == 1
    for approval_ in acme["approvals"]:
        assert note.count(f"tsi-key: {approval_['key']}") == 1

    post_event(workspace, withdrawal("ts-cy"))

    after = invoices_api(client, workspace)
    assert sorted(i["id"] for i in after["invoices"]) == sorted(i["id"] for i in body["invoices"])
    acme = detail(client, workspace, acme["id"])
    globex = detail(client, workspace, globex["id"])
    assert members_on(acme) == ["Ada Lovelace", "Bob Babbage"]
    assert members_on(globex) == ["Ada Lovelace"]
    for inv in (acme, globex):
        assert Decimal(inv["total"]) == Decimal(str(qbo.invoices[inv["provider_id"]]["TotalAmt"]))
        assert "ts-cy" not in qbo.invoices[inv["provider_id"]]["PrivateNote"]
    assert after["totals"] == {"USD": "360.00"}


def test_per_timesheet_is_the_same_model_with_one_approval_per_invoice(
    client: Any, workspace: Any, post_event: Any
) -> None:
    map_clients_locally(workspace.id, {c: (n, f"ap@{c}.example") for c, n in CLIENTS.items()})
    three_members(post_event, workspace)
    body = invoices_api(client, workspace)
    assert body["total"] == 5  # Ada: 2, Bob: 1, Cy: 2
    assert all(len(inv["approvals"]) == 1 for inv in body["invoices"])
    assert all(inv["mode"] == "per_timesheet" for inv in body["invoices"])
    ledger = {str(i.id): i for i in db.session.scalars(select(LocalInvoice))}
    for inv in body["invoices"]:
        assert Decimal(inv["total"]) == ledger[inv["provider_id"]].total
    # Filters: customer, period, provider status, and pagination.
    acme_id = next(
        i["customer"]["id"] for i in body["invoices"] if i["customer"]["name"] == "Acme Corp"
    )
    assert invoices_api(client, workspace, f"?customer_id={acme_id}")["total"] == 3
    assert invoices_api(client, workspace, "?period=2026-11-24")["total"] == 5
    assert invoices_api(client, workspace, "?period=2026-12-24")["total"] == 0
    assert invoices_api(client, workspace, "?provider_status=draft")["total"] == 5
    page = invoices_api(client, workspace, "?limit=2&offset=4")
    assert len(page["invoices"]) == 1 and page["total"] == 5
    bad = client.get("/api/v1/invoices?status=lost&period=x", headers=workspace.auth)
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    assert client.get("/api/v1/invoices/999999", headers=workspace.auth).status_code == 404


def test_needs_attention_is_visible_everywhere_and_the_withdrawal_records_what_it_saw(
    client: Any, workspace: Any, post_event: Any, admin_client: Any
) -> None:
    map_clients_locally(workspace.id, {"cl-acme": ("Acme Corp", "ap@acme.example")})
    post_event(workspace, week_approval("ts-ada", "u-ada", {"cl-acme": 60}))
    with db.session_scope() as s:  # finance paid it in the ledger; no webhook told us yet
        s.scalars(select(LocalInvoice)).one().state = "paid"

    post_event(workspace, withdrawal("ts-ada"))

    row = db.session.scalars(select(Draft)).one()
    db.session.refresh(row)
    assert row.status == "needs_attention"
    assert "already paid at the provider" in row.hold_message  # named, not "sent or finalized"
    invoice = db.session.get(Invoice, row.invoice_id)
    assert invoice.provider_status == "paid" and row.provider_status == "paid"  # recorded
    assert invoice.needs_attention and "paid" in invoice.attention_message

    flagged = invoices_api(client, workspace, "?status=needs_attention")
    assert flagged["total"] == 1 and flagged["invoices"][0]["needs_attention"] is True
    drafts = client.get("/api/v1/drafts?status=needs_attention", headers=workspace.auth).json
    assert drafts["total"] == 1  # the withdrawn approval's draft is still listed

    overview = admin_client.get(f"/workspaces/{workspace.id}").get_data(as_text=True)
    assert "1 invoice(s) need attention" in overview
    page = admin_client.get(f"/workspaces/{workspace.id}/drafts?status=needs_attention")
    assert page.status_code == 200 and "Needs attention" in page.get_data(as_text=True)
    assert 'data-needs-attention="1"' in page.get_data(as_text=True)

    from connector import metrics

    text = metrics.render_metrics().decode()
    assert "tsi_invoices_needing_attention 1.0" in text

"""Issue #9 item 5: an hour of a timesheet revision is on at most one live draft at a time.

Mapping, rate and settings changes re-plan only drafts not yet created at the provider; a
created draft is left alone, or replaced through an explicit re-bill that withdraws it first.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from connector import db
from connector.models import LocalCustomer, LocalInvoice
from tests.helpers import event

APPROVED = "timesheet_approved__three_customers"
TS_ID = "ts_8f3a2c9e1b"
GLOBEX_TOTAL = "265.84"  # 580 min x 27.50 / 60, two lines


def local_customer(workspace_id: int, name: str, currency: str = "USD") -> str:
    with db.session_scope() as s:
        row = LocalCustomer(workspace_id=workspace_id, name=name, currency=currency)
        s.add(row)
        s.flush()
        return str(row.id)


def ledger() -> list[LocalInvoice]:
    db.session.expire_all()
    return list(db.session.scalars(select(LocalInvoice).order_by(LocalInvoice.id)))


def live_invoices() -> list[LocalInvoice]:
    return [inv for inv in ledger() if inv.state != "deleted"]


def drafts(client, ws) -> list[dict]:  # type: ignore[no-untyped-def]
    res = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=ws.auth)
    assert res.status_code == 200, res.json
    return res.json["drafts"]


def put_mapping(client, ws, kind: str, tracker_id: str, customer_id: str):  # type: ignore[no-untyped-def]
    res = client.put(
        f"/api/v1/mappings/{kind}/{tracker_id}", json={"customer_id": customer_id}, headers=ws.auth
    )
    assert res.status_code == 200, res.json
    return res.json


def held_minutes_of(body: list[dict], *project_ids: str) -> int:
    return sum(
        d["minutes"]
        for d in body
        if d["status"] == "needs_mapping" and d["subject"] in {f"project:{p}" for p in project_ids}
    )


def test_remove_and_remap_a_client_never_bills_its_hours_twice(workspace, post_event, client):
    globex_1 = local_customer(workspace.id, "Globex Corporation")
    globex_2 = local_customer(workspace.id, "Globex Corp (new books)")
    post_event(workspace, event(APPROVED))  # nothing mapped: every customer held

    first = put_mapping(client, workspace, "client", "cl-globex", globex_1)
    assert first["released"] == 1
    assert first["notice"] is None and first["approvals_with_created_drafts"] == 0
    assert [(inv.customer_id, str(inv.total)) for inv in live_invoices()] == [
        (globex_1, GLOBEX_TOTAL)
    ]

    res = client.delete("/api/v1/mappings/client/cl-globex", headers=workspace.auth)
    assert res.status_code == 204
    body = drafts(client, workspace)
    # The hours are on a live draft: they are not "not invoiced yet" again.
    assert held_minutes_of(body, "p-101", "p-102") == 0
    assert [d["status"] for d in body if d["customer"] and d["customer"]["id"] == globex_1] == [
        "drafted"
    ]

    second = put_mapping(client, workspace, "client", "cl-globex", globex_2)
    assert "future approvals" in second["notice"]
    assert second["approvals_with_created_drafts"] == 1
    assert [(inv.customer_id, str(inv.total)) for inv in live_invoices()] == [
        (globex_1, GLOBEX_TOTAL)
    ]  # no second draft for the same 9.67 h
    body = drafts(client, workspace)
    assert sum(d["minutes"] for d in body if d["status"] == "drafted") == 580


def test_hours_newly_mapped_to_a_customer_with_a_created_draft_get_a_draft_of_their_own(
    workspace, post_event, client
):
    """p-101 mapped first and drafted; then its client is mapped to the same customer: only the
    hours not on the live draft (p-102, 50 min) are billed, on a second draft, never twice."""
    globex = local_customer(workspace.id, "Globex Corporation")
    post_event(workspace, event(APPROVED))
    put_mapping(client, workspace, "project", "p-101", globex)
    assert [str(inv.total) for inv in live_invoices()] == ["242.92"]  # 530 min

    put_mapping(client, workspace, "client", "cl-globex", globex)

    totals = sorted(str(inv.total) for inv in live_invoices())
    assert totals == ["22.92", "242.92"]  # 50 min of p-102; together the 265.84 of one draft
    body = drafts(client, workspace)
    drafted = [d for d in body if d["status"] == "drafted"]
    assert len(drafted) == 2 and len({d["key"] for d in drafted}) == 2
    assert held_minutes_of(body, "p-101", "p-102") == 0


def test_a_rate_change_leaves_a_created_draft_alone(workspace, post_event, client):
    globex = local_customer(workspace.id, "Globex Corporation")
    doc = event(APPROVED)
    for rows in doc["data"]["timesheet"]["daily_breakdown"].values():
        for row in rows:
            row.pop("rate", None)
    post_event(workspace, doc)
    put_mapping(client, workspace, "client", "cl-globex", globex)
    res = client.post(
        "/api/v1/rates",
        json={"amount": "27.50", "currency": "USD"},
        headers=workspace.auth,
    )
    assert res.status_code in (200, 201), res.json
    assert [str(inv.total) for inv in live_invoices()] == [GLOBEX_TOTAL]

    res = client.post(
        "/api/v1/rates",
        json={"amount": "99.00", "currency": "USD", "customer_id": globex},
        headers=workspace.auth,
    )
    assert res.status_code in (200, 201), res.json
    assert "future approvals" in res.json["notice"]
    assert [str(inv.total) for inv in live_invoices()] == [GLOBEX_TOTAL]


def test_rebill_withdraws_the_created_draft_then_bills_with_current_mappings(
    workspace, post_event, client
):
    globex_1 = local_customer(workspace.id, "Globex Corporation")
    globex_2 = local_customer(workspace.id, "Globex Corp (new books)")
    post_event(workspace, event(APPROVED))
    put_mapping(client, workspace, "client", "cl-globex", globex_1)
    put_mapping(client, workspace, "client", "cl-globex", globex_2)

    res = client.post(f"/api/v1/approvals/{TS_ID}/rebill", headers=workspace.auth)
    assert res.status_code == 202, res.json
    assert res.json["job_id"]

    invoices = ledger()
    assert [(inv.customer_id, inv.state) for inv in invoices] == [
        (globex_1, "deleted"),
        (globex_2, "draft"),
    ]
    assert invoices[1].total == Decimal(GLOBEX_TOTAL) and invoices[1].key != invoices[0].key
    body = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=workspace.auth).json
    assert [d["customer"]["id"] for d in body["drafts"] if d["status"] == "drafted"] == [globex_2]
    assert any(d["status"] == "voided" for d in body["previous_drafts"])

    # Pressing it twice (or the job retried) re-bills again, never with two live drafts.
    client.post(f"/api/v1/approvals/{TS_ID}/rebill", headers=workspace.auth)
    assert [inv.customer_id for inv in live_invoices()] == [globex_2]


def test_rebill_of_a_sent_invoice_flags_it_and_bills_again(workspace, post_event, client):
    globex = local_customer(workspace.id, "Globex Corporation")
    post_event(workspace, event(APPROVED))
    put_mapping(client, workspace, "client", "cl-globex", globex)
    with db.session_scope() as s:
        s.scalars(select(LocalInvoice)).one().state = "sent"

    assert (
        client.post(f"/api/v1/approvals/{TS_ID}/rebill", headers=workspace.auth).status_code == 202
    )

    body = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=workspace.auth).json
    flagged = [d for d in body["drafts"] if d["status"] == "needs_attention"]  # stays in view
    assert len(flagged) == 1 and "Review it by hand" in flagged[0]["hold_message"]
    assert [inv.state for inv in ledger()] == ["sent", "draft"]


def test_rebill_unknown_or_withdrawn_approval_is_a_problem(workspace, post_event, client):
    res = client.post("/api/v1/approvals/ts_nope/rebill", headers=workspace.auth)
    assert res.status_code == 404 and res.mimetype == "application/problem+json"
    post_event(workspace, event(APPROVED))
    post_event(workspace, event("timesheet_unapproved"))
    res = client.post(f"/api/v1/approvals/{TS_ID}/rebill", headers=workspace.auth)
    assert res.status_code == 409 and res.mimetype == "application/problem+json"


def test_console_rebill_confirms_what_follows_then_rebills(
    workspace, post_event, client, admin_client
):
    from connector.models import Timesheet
    from tests.app_fixtures import csrf_token

    globex_1 = local_customer(workspace.id, "Globex Corporation")
    globex_2 = local_customer(workspace.id, "Globex Corp (new books)")
    post_event(workspace, event(APPROVED))
    put_mapping(client, workspace, "client", "cl-globex", globex_1)
    timesheet_pk = db.session.scalars(select(Timesheet.id)).one()

    # The mapping page says the change applies to future approvals.
    res = admin_client.post(
        f"/workspaces/{workspace.id}/mappings",
        data={
            "kind": "client",
            "tracker_id": "cl-globex",
            "customer_id": globex_2,
            "csrf_token": csrf_token(admin_client),
        },
        follow_redirects=True,
    )
    assert "applies to future approvals" in res.data.decode()
    assert [inv.customer_id for inv in live_invoices()] == [globex_1]

    page = admin_client.get(f"/workspaces/{workspace.id}/approvals/{timesheet_pk}").data.decode()
    url = f"/workspaces/{workspace.id}/approvals/{timesheet_pk}/rebill"
    assert url in page
    confirm = admin_client.get(url).data.decode()
    assert "deleted" in confirm and "left alone and flagged" in confirm
    assert "Globex Corporation" in confirm and GLOBEX_TOTAL in confirm
    assert [inv.customer_id for inv in live_invoices()] == [globex_1]  # GET changes nothing

    res = admin_client.post(url, data={"csrf_token": csrf_token(admin_client)})
    assert res.status_code == 302
    assert [(inv.customer_id, inv.state) for inv in ledger()] == [
        (globex_1, "deleted"),
        (globex_2, "draft"),
    ]


def test_notices_count_only_approvals_whose_created_drafts_the_change_concerns(
    workspace, post_event, client
):
    from connector import pipeline

    globex = local_customer(workspace.id, "Globex Corporation")
    post_event(workspace, event(APPROVED))
    second = event(APPROVED)
    second["data"]["timesheet"]["id"] = "ts_second"
    post_event(workspace, second)
    put_mapping(client, workspace, "client", "cl-globex", globex)
    assert len(live_invoices()) == 2

    count = pipeline.approvals_with_created_drafts
    assert count(workspace.id) == 2
    assert count(workspace.id, customer_id=globex) == 2
    assert count(workspace.id, customer_id="someone-else") == 0
    assert count(workspace.id, tracker=("client", "cl-globex")) == 2
    assert count(workspace.id, tracker=("project", "p-102")) == 2
    assert count(workspace.id, tracker=("client", "cl-initech")) == 0  # its hours are held
    assert count(workspace.id, tracker=("project", "p-202")) == 0

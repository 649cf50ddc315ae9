"""The road one approval travels, end to end on the built-in local provider."""

from __future__ import annotations

from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select

from connector import db, pipeline
from connector.models import Draft, Job, LocalInvoice, Timesheet
from tests.helpers import event, map_clients_locally

APPROVED = "timesheet_approved__three_customers"
TS_ID = "ts_8f3a2c9e1b"


def drafts_api(client, ws) -> dict:  # type: ignore[no-untyped-def]
    res = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=ws.auth)
    assert res.status_code == 200, res.json
    return res.json


def invoices() -> list[LocalInvoice]:
    return list(db.session.scalars(select(LocalInvoice).order_by(LocalInvoice.id)))


def test_three_customers_make_exactly_three_drafts_to_the_cent(workspace, post_event, client):
    customers = map_clients_locally(workspace.id)
    assert post_event(workspace, event(APPROVED)).status_code == 202

    body = drafts_api(client, workspace)
    by_name = {d["customer"]["name"]: d for d in body["drafts"]}
    assert set(by_name) == {"Globex Corporation", "Initech", "Umbrella Ltd"}
    assert all(d["status"] == "drafted" for d in body["drafts"])
    # Hand-computed: minutes x rate / 60, half-up per line; total = sum of lines.
    globex = by_name["Globex Corporation"]
    assert [(x["project_name"], x["minutes"], x["amount"]) for x in globex["lines"]] == [
        ("Mobile App", 50, "22.92"),  # 50 x 27.50 / 60 = 22.9166..
        ("Website", 530, "242.92"),  # 530 x 27.50 / 60 = 242.9166..
    ]
    assert globex["total"] == "265.84"
    assert by_name["Initech"]["total"] == "856.58"  # 541 x 95 / 60 = 856.5833..
    assert by_name["Umbrella Ltd"]["total"] == "202.00"  # 101 x 120 / 60
    assert body["timesheet"]["excluded_minutes"] == 45  # the non-billable internal row
    assert {d["customer"]["id"] for d in body["drafts"]} == set(customers.values())
    assert all(d["link"] and d["provider"] == "local" for d in body["drafts"])

    ledger = invoices()
    assert len(ledger) == 3
    assert sum((inv.total for inv in ledger), Decimal(0)) == Decimal("1324.42")
    # The note names the approval; the key is the ledger's own column, never repeated in words.
    assert all("ts_8f3a2c9e1b" in inv.private_note for inv in ledger)
    assert not any("tsi-key" in inv.private_note for inv in ledger)


def test_redelivery_under_another_webhook_id_creates_nothing_new(workspace, post_event, client):
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED), msg_id="msg_1")
    post_event(workspace, event(APPROVED), msg_id="msg_2")  # the tracker re-sent it
    assert len(invoices()) == 3
    assert db.session.scalar(select(func.count()).select_from(Draft)) == 3


def test_unmapped_customers_are_held_then_released_by_mapping(workspace, post_event, client):
    post_event(workspace, event(APPROVED))
    held = drafts_api(client, workspace)["drafts"]
    assert {d["status"] for d in held} == {"needs_mapping"}
    assert all(
        "Globex" in d["hold_message"]
        or "Initech" in d["hold_message"]
        or "Umbrella" in d["hold_message"]
        for d in held
    )
    assert invoices() == []

    map_clients_locally(workspace.id)
    pipeline.release_holds(workspace.id)  # the admin console calls this after mapping

    body = drafts_api(client, workspace)
    assert sorted(d["status"] for d in body["drafts"]) == ["drafted"] * 3
    assert len(invoices()) == 3


def test_missing_rate_holds_that_customers_draft_only(workspace, post_event, client):
    map_clients_locally(workspace.id)
    doc = event(APPROVED)
    for rows in doc["data"]["timesheet"]["daily_breakdown"].values():
        for row in rows:
            if row["project_id"] == "p-303":
                del row["rate"]
    post_event(workspace, doc)
    statuses = {d["customer"]["name"]: d for d in drafts_api(client, workspace)["drafts"]}
    assert statuses["Umbrella Ltd"]["status"] == "needs_rate"
    assert "Ada Lovelace" in statuses["Umbrella Ltd"]["hold_message"]
    assert statuses["Globex Corporation"]["status"] == "drafted"
    assert len(invoices()) == 2


def test_withdrawn_approval_deletes_drafts_and_reapproval_creates_new(
    workspace, post_event, client
):
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    post_event(workspace, event("timesheet_unapproved"))
    body = drafts_api(client, workspace)
    assert body["timesheet"]["status"] == "withdrawn"
    assert {d["status"] for d in body["previous_drafts"]} == {"voided"}
    assert {inv.state for inv in invoices()} == {"deleted"}

    later = event(APPROVED, timestamp="2026-11-25T10:00:00Z")
    post_event(workspace, later)
    body = drafts_api(client, workspace)
    assert [d["status"] for d in body["drafts"]] == ["drafted"] * 3
    live = [inv for inv in invoices() if inv.state == "draft"]
    assert len(live) == 3  # fresh keys: the deleted ones are never resurrected


def test_finalized_draft_is_left_alone_and_flagged(workspace, post_event, client):
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    with db.session_scope() as s:
        first = s.scalars(select(LocalInvoice).order_by(LocalInvoice.id)).first()
        first.state = "sent"  # finance sent it
    post_event(workspace, event("timesheet_unapproved"))
    body = drafts_api(client, workspace)
    # The flagged one stays in view (a person must look); the others are earlier drafts.
    assert [d["status"] for d in body["drafts"]] == ["needs_attention"]
    assert sorted(d["status"] for d in body["previous_drafts"]) == ["voided", "voided"]


def test_unapproval_arriving_before_its_approval_wins(workspace, post_event, client):
    map_clients_locally(workspace.id)
    post_event(workspace, event("timesheet_unapproved"))  # timestamp 2026-11-24
    post_event(workspace, event(APPROVED))  # older: 2026-11-23
    assert invoices() == []
    ts = db.session.scalars(select(Timesheet)).one()
    assert ts.status == "withdrawn"


def test_changed_rows_make_a_new_revision_and_retire_the_old_drafts(workspace, post_event, client):
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    changed = event(APPROVED, timestamp="2026-11-23T12:00:00Z")
    changed["data"]["timesheet"]["daily_breakdown"]["2026-11-19"][0]["total_minutes"] = 66
    post_event(workspace, changed)
    body = drafts_api(client, workspace)
    umbrella = next(d for d in body["drafts"] if d["customer"]["name"] == "Umbrella Ltd")
    assert umbrella["total"] == "322.00"  # (95 + 66) x 120 / 60
    assert {d["status"] for d in body["previous_drafts"]} == {"voided"}
    assert len([i for i in invoices() if i.state == "draft"]) == 3


def test_thin_event_waits_with_a_clear_status(workspace, post_event, client):
    post_event(workspace, event("timesheet_approved__thin"))
    job = db.session.scalars(select(Job)).one()
    assert job.state == "waiting" and job.wait_reason == "tracker_data"
    assert "WebWork" in job.last_error
    body = drafts_api(client, workspace)
    assert body["timesheet"]["status"] == "waiting_for_data"


def test_preview_has_no_side_effects(workspace, client):
    map_clients_locally(workspace.id)
    res = client.post("/api/v1/preview", json=event(APPROVED), headers=workspace.auth)
    assert res.status_code == 200
    assert sorted(d["total"] for d in res.json["drafts"]) == ["202.00", "265.84", "856.58"]
    assert db.session.scalar(select(func.count()).select_from(Draft)) == 0
    assert invoices() == []


def test_preview_names_the_bad_field(workspace, client):
    doc = event(APPROVED)
    doc["data"]["timesheet"]["date_from"] = "16/11/2026"
    res = client.post("/api/v1/preview", json=doc, headers=workspace.auth)
    assert res.status_code == 422
    assert res.json["field"] == "/data/timesheet/date_from"


def test_api_requires_a_token_of_that_workspace(make_workspace, post_event, client):
    a = make_workspace(tracker_workspace_id="4242")
    b = make_workspace(tracker_workspace_id="5555")
    map_clients_locally(a.id)
    post_event(a, event(APPROVED))
    assert client.get(f"/api/v1/timesheets/{TS_ID}/drafts").status_code == 401
    bad = {"Authorization": "Bearer tsi_nope"}
    assert client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=bad).status_code == 401
    res = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=b.auth)
    assert res.status_code == 404 and res.mimetype == "application/problem+json"


def test_a_refused_draft_is_retried_under_a_fresh_key(workspace, post_event, client, monkeypatch):
    from connector.providers.base import Rejected
    from connector.providers.local import LocalProvider

    map_clients_locally(workspace.id)
    original = LocalProvider.create_draft

    def refuse_initech(self, draft):  # type: ignore[no-untyped-def]
        if draft.customer_name == "Initech":
            raise Rejected("Customer is inactive", code="610")
        return original(self, draft)

    monkeypatch.setattr(LocalProvider, "create_draft", refuse_initech)
    post_event(workspace, event(APPROVED))
    initech = next(
        d for d in drafts_api(client, workspace)["drafts"] if d["customer"]["name"] == "Initech"
    )
    assert initech["status"] == "failed" and "inactive" in initech["error"]
    monkeypatch.setattr(LocalProvider, "create_draft", original)

    ts = db.session.scalars(select(Timesheet)).one()
    pipeline.retry_timesheet(workspace.id, ts.id)
    retried = next(
        d for d in drafts_api(client, workspace)["drafts"] if d["customer"]["name"] == "Initech"
    )
    assert retried["status"] == "drafted" and retried["key"] != initech["key"]
    assert len(invoices()) == 3


def test_provider_never_connected_holds_with_connect_first_not_the_ledgers_customers(
    make_workspace, post_event, client
):
    ws = make_workspace(provider="quickbooks")
    map_clients_locally(ws.id)  # the ledger's customers: not QuickBooks', which is not connected
    post_event(ws, event(APPROVED))
    drafts = drafts_api(client, ws)["drafts"]
    assert {d["status"] for d in drafts} == {"needs_mapping"}
    assert all(d["customer"] is None for d in drafts)  # never a ledger customer id
    assert all("QuickBooks Online, which is not connected yet" in d["hold_message"] for d in drafts)
    job = db.session.scalars(select(Job)).one()
    assert job.state == "done"  # connecting re-bills the held approvals


def test_one_draft_failing_at_the_provider_does_not_stop_the_others(
    workspace, post_event, client, monkeypatch
):
    """A 5xx on one customer's draft: the other drafts of the approval are still created."""
    from connector.providers.base import RetryLater
    from connector.providers.local import LocalProvider

    map_clients_locally(workspace.id)
    original = LocalProvider.create_draft

    def fail_globex(self, draft):  # type: ignore[no-untyped-def]
        if draft.customer_name == "Globex Corporation":
            raise RetryLater("provider returned 500", outcome_unknown=True)
        return original(self, draft)

    monkeypatch.setattr(LocalProvider, "create_draft", fail_globex)
    post_event(workspace, event(APPROVED))
    by_name = {d["customer"]["name"]: d for d in drafts_api(client, workspace)["drafts"]}
    assert by_name["Globex Corporation"]["status"] == "pending"
    assert by_name["Initech"]["status"] == "drafted"
    assert by_name["Umbrella Ltd"]["status"] == "drafted"
    job = db.session.scalars(select(Job)).one()
    assert job.state == "pending" and "500" in (job.last_error or "")  # retried later

    monkeypatch.setattr(LocalProvider, "create_draft", original)
    ts = db.session.scalars(select(Timesheet)).one()
    pipeline.bill_timesheet_now(workspace.id, ts.id, current_app.config)
    assert sorted(d["status"] for d in drafts_api(client, workspace)["drafts"]) == ["drafted"] * 3
    assert len(invoices()) == 3

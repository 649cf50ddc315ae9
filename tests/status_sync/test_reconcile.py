"""The reconcile job (webhooks get lost), the scheduler, and withdrawals that respect the state."""

from __future__ import annotations

from typing import Any

import pytest
from flask import current_app
from sqlalchemy import select

from connector import db, status_sync
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Draft, Invoice, Job, LocalInvoice
from tests.app_fixtures import load_fixture
from tests.helpers import event, map_clients_locally
from tests.providers.qbo_fixtures import CONFIG, FakeQbo, connect_store
from tests.status_sync.conftest import add_draft, draft

APPROVED = "timesheet_approved__three_customers"
TS_ID = "ts_8f3a2c9e1b"
STRIPE = "https://api.stripe.com"


def local_drafts() -> list[Draft]:
    db.session.expire_all()
    return list(db.session.scalars(select(Draft).order_by(Draft.id)))


def test_quickbooks_reconcile_finds_a_deletion_no_webhook_announced(
    app: Any, workspace: Any, rsps: Any
) -> None:
    fake = FakeQbo(rsps)
    app.config.update(CONFIG)
    connect_store(workspace.id, app)
    for id_ in ("301", "302", "303"):
        fake.invoices[id_] = {"Id": id_, "TotalAmt": 10.0, "Balance": 10.0, "EmailStatus": "NotSet"}
    kept, deleted, sent = (
        add_draft(workspace.id, "quickbooks", "301", n=1),
        add_draft(workspace.id, "quickbooks", "302", n=2),
        add_draft(workspace.id, "quickbooks", "303", n=3),
    )
    del fake.invoices["302"]  # finance deleted it in QuickBooks; the webhook never came
    fake.invoices["303"]["EmailStatus"] = "EmailSent"

    status_sync.reconcile_workspace(workspace.id, current_app.config)

    assert [draft(d).provider_status for d in (kept, deleted, sent)] == ["draft", "deleted", "sent"]
    # One batch query for the three, not three reads.
    assert len(fake.queries) == 1 and fake.queries[0].startswith(
        "SELECT * FROM Invoice WHERE Id IN"
    )


def test_quickbooks_reads_in_batches_of_100_through_the_limiter(
    app: Any, workspace: Any, rsps: Any
) -> None:
    from tests.providers.qbo_fixtures import NoLimiter

    fake = FakeQbo(rsps)
    limiter = NoLimiter()
    from connector.providers import quickbooks

    provider = quickbooks.create(
        workspace.id, connect_store(workspace.id, app), CONFIG, limiter=limiter
    )
    refs = [str(i) for i in range(1000, 1250)]
    for ref in refs[:200]:
        fake.invoices[ref] = {"Id": ref, "TotalAmt": 5.0, "Balance": 0.0}
    states = provider.fetch_invoice_states(refs)
    assert len(fake.queries) == 3  # 100 + 100 + 50
    assert len(limiter.buckets) == 3 and limiter.buckets[0][0].startswith("quickbooks:")
    assert {states[r].status for r in refs[:200]} == {"paid"}
    assert {states[r].status for r in refs[200:]} == {"deleted"}


def test_stripe_reconcile_reads_each_open_invoice_and_stops_reading_settled_ones(
    app: Any, workspace: Any, rsps: Any
) -> None:
    DbCredentialStore(workspace.id, "stripe", secret_box(app.config)).connect(
        {"method": "api_key", "api_key": "rk_test_51TestKeyForTheConnectorabcd"},
        account_id="acct_1Test",
        environment="test",
    )
    open_one = add_draft(workspace.id, "stripe", "in_open", n=1)
    gone = add_draft(workspace.id, "stripe", "in_gone", n=2)
    paid = add_draft(workspace.id, "stripe", "in_paid", n=3, provider_status="paid")
    body = load_fixture("stripe", "invoice__open.json") | {"id": "in_open"}
    rsps.get(f"{STRIPE}/v1/invoices/in_open", json=body)
    rsps.get(
        f"{STRIPE}/v1/invoices/in_gone",
        status=404,
        json=load_fixture("stripe", "error__missing_invoice.json"),
    )

    assert status_sync.reconcile_workspace(workspace.id, current_app.config) == {"stripe": 2}

    assert draft(open_one).provider_status == "sent"
    assert draft(gone).provider_status == "deleted"
    assert draft(paid).provider_status == "paid"  # settled: not read again
    assert not any("in_paid" in c.request.url for c in rsps.calls)


def test_local_drafts_start_as_draft_and_reconcile_sees_a_deletion(
    workspace: Any, post_event: Any, client: Any
) -> None:
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    assert {d.provider_status for d in local_drafts()} == {"draft"}

    with db.session_scope() as s:
        first = s.scalars(select(LocalInvoice).order_by(LocalInvoice.id)).first()
        first.state = "deleted"  # finance deleted it in the ledger
    res = client.post("/api/v1/drafts/provider-status/sync", headers=workspace.auth)
    assert res.status_code == 202 and res.json["status"] == "queued"

    statuses = [d.provider_status for d in local_drafts()]
    assert statuses == ["deleted", "draft", "draft"]
    body = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=workspace.auth).json
    api = sorted((d["provider_status"], d["status"]) for d in body["drafts"])
    assert api == [("deleted", "drafted"), ("draft", "drafted"), ("draft", "drafted")]
    assert all(d["provider_status_at"] for d in body["drafts"])


def test_withdrawal_never_touches_an_invoice_the_sync_saw_sent(
    workspace: Any, post_event: Any, client: Any
) -> None:
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    first = local_drafts()[0]
    # A webhook said finance sent it (the ledger itself has not caught up yet).
    with db.session_scope() as s:
        s.get(Invoice, first.invoice_id).provider_status = "sent"

    post_event(workspace, event("timesheet_unapproved"))

    rows = {d.id: d for d in local_drafts()}
    assert rows[first.id].status == "needs_attention"
    assert "already sent" in rows[first.id].hold_message
    invoice = db.session.scalars(select(LocalInvoice).order_by(LocalInvoice.id)).first()
    assert invoice.state == "draft"  # not deleted
    others = [d for d in rows.values() if d.id != first.id]
    assert {(d.status, d.provider_status) for d in others} == {("voided", "deleted")}


def test_scheduler_queues_one_reconcile_per_due_workspace(
    workspace: Any, make_workspace: Any, post_event: Any
) -> None:
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    idle = make_workspace(tracker_workspace_id="99")  # no drafts: nothing to read

    first = status_sync.schedule_reconciles(interval_minutes=60)
    again = status_sync.schedule_reconciles(interval_minutes=60)

    assert len(first) == 1 and again == []
    jobs = list(db.session.scalars(select(Job).where(Job.kind == "reconcile_provider_status")))
    assert [j.workspace_id for j in jobs] == [workspace.id]
    assert jobs[0].state == "done"
    assert idle.id not in {j.workspace_id for j in jobs}
    assert status_sync.schedule_reconciles(interval_minutes=0) == []


def test_reconcile_skips_a_provider_waiting_for_a_reconnect(app: Any, workspace: Any) -> None:
    add_draft(workspace.id, "stripe", "in_1")  # no Stripe connection at all
    assert status_sync.reconcile_workspace(workspace.id, current_app.config) == {}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"TotalAmt": 100.0, "Balance": 100.0, "EmailStatus": "NotSet"}, "draft"),
        ({"TotalAmt": 100.0, "Balance": 100.0, "EmailStatus": "EmailSent"}, "sent"),
        ({"TotalAmt": 100.0, "Balance": 40.0, "EmailStatus": "NotSet"}, "partially_paid"),
        ({"TotalAmt": 100.0, "Balance": 0, "EmailStatus": "EmailSent"}, "paid"),
        ({"TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"}, "voided"),
    ],
)
def test_quickbooks_invoice_status(row: dict[str, Any], expected: str) -> None:
    from connector.providers.quickbooks import invoice_status

    assert invoice_status(row) == expected


@pytest.mark.parametrize(
    ("invoice", "expected"),
    [
        ({"status": "draft"}, "draft"),
        ({"status": "open", "amount_paid": 0}, "sent"),
        ({"status": "open", "amount_paid": 100}, "partially_paid"),
        ({"status": "paid"}, "paid"),
        ({"status": "void"}, "voided"),
        ({"status": "uncollectible"}, "uncollectible"),
        ({"id": "in_1", "deleted": True}, "deleted"),
    ],
)
def test_stripe_invoice_status(invoice: dict[str, Any], expected: str) -> None:
    from connector.providers.stripe import invoice_status

    assert invoice_status(invoice) == expected


def test_console_shows_each_drafts_provider_state(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    with db.session_scope() as s:
        first = s.scalars(select(LocalInvoice).order_by(LocalInvoice.id)).first()
        first.state = "paid"
    status_sync.reconcile_workspace(workspace.id, current_app.config)
    timesheet_pk = local_drafts()[0].timesheet_pk

    for path in (
        f"/workspaces/{workspace.id}/approvals",
        f"/workspaces/{workspace.id}/approvals/{timesheet_pk}",
    ):
        page = admin_client.get(path).data.decode()
        assert page.count('data-provider-status="paid"') == 1, path
        assert page.count('data-provider-status="draft"') == 2, path
        assert "paid in Built-in ledger" in page


def test_withdrawal_of_a_draft_finance_already_deleted_makes_no_call(
    app: Any, workspace: Any, rsps: Any
) -> None:
    from connector import pipeline
    from connector.models import Timesheet, Workspace

    fake = FakeQbo(rsps)
    app.config.update(CONFIG)
    connect_store(workspace.id, app)
    gone = add_draft(workspace.id, "quickbooks", "302", provider_status="deleted")
    with db.new_session() as s:
        ws = s.get(Workspace, workspace.id)
        ts = s.scalars(select(Timesheet)).one()
        pipeline.withdraw_drafts(s, ws, ts, current_app.config, reason="approval withdrawn")
        s.commit()
    row = draft(gone)
    assert row.status == "voided" and "already deleted" in row.hold_message
    assert len(rsps.calls) == 0 and fake.queries == []


def test_operator_cli_reconciles_now(app: Any, workspace: Any, post_event: Any) -> None:
    map_clients_locally(workspace.id)
    post_event(workspace, event(APPROVED))
    with db.session_scope() as s:
        s.scalars(select(LocalInvoice).order_by(LocalInvoice.id)).first().state = "deleted"
    res = app.test_cli_runner().invoke(args=["provider-status", "reconcile"])
    assert res.exit_code == 0, res.output
    assert f"workspace {workspace.id}: 3 at local" in res.output
    assert [d.provider_status for d in local_drafts()] == ["deleted", "draft", "draft"]

"""Issue #13 part 1 at the QuickBooks wire: one unsent invoice per customer and period, changed
by sparse updates with its SyncToken (5010 reads again and retries, never a second invoice)."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask import current_app

from connector import db, pipeline
from connector.books import books_key
from connector.models import CustomerMapping, Workspace
from connector.providers.base import RetryLater
from tests.consolidation.helpers import (
    approval,
    draft_rows,
    period_invoices,
    set_consolidation,
    withdrawal,
)
from tests.providers.qbo_fixtures import (
    CONFIG,
    FAULT_5010,
    REALM,
    FakeQbo,
    connect_store,
    validate_entity,
)
from webhooks.webwork.events import parse_event

CUSTOMER = "1"  # Amy's Bird Sanctuary, USD, Net 30


def day(n: int) -> date:
    return date(2026, 11, 23 + n) if n < 8 else date(2026, 12, n - 7)


@pytest.fixture
def qbo(app: Any, workspace: Any, fake: FakeQbo) -> FakeQbo:
    app.config.update(CONFIG)
    connect_store(workspace.id, app)
    with db.session_scope() as s:
        s.get(Workspace, workspace.id).provider = "quickbooks"
        s.add(
            CustomerMapping(
                workspace_id=workspace.id,
                books=books_key("quickbooks", REALM, "sandbox"),
                kind="client",
                tracker_id="cl-acme",
                customer_id=CUSTOMER,
                customer_name="Amy's Bird Sanctuary",
                customer_currency="USD",
            )
        )
    set_consolidation(workspace.id)
    return fake


def items(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in invoice["Line"] if line["DetailType"] == "SalesItemLineDetail"]


def amounts(invoice: dict[str, Any]) -> list[Decimal]:
    return [Decimal(str(line["Amount"])) for line in items(invoice)]


def check_xsd(body: dict[str, Any]) -> None:
    """The sparse update as Intuit's schema sees it (``sparse`` is an XML attribute)."""
    doc = {k: v for k, v in body.items() if k != "sparse"}
    doc["@sparse"] = body["sparse"]
    validate_entity("Invoice", doc)


def test_three_approvals_of_two_members_make_one_quickbooks_invoice(workspace, post_event, qbo):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60, day(1): 120}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}, rate="30.00"))

    (invoice,) = qbo.invoices.values()
    assert len(qbo.created_bodies["invoice"]) == 1  # never a second invoice for the period
    assert amounts(invoice) == [Decimal("82.5"), Decimal("13.75"), Decimal("45")]
    assert Decimal(str(invoice["TotalAmt"])) == Decimal("141.25")
    rows = draft_rows()
    assert [r.status for r in rows] == ["drafted"] * 3
    assert {r.provider_id for r in rows} == {invoice["Id"]}
    for row in rows:
        assert f"tsi-key: {row.key}" in invoice["PrivateNote"]
    descriptions = [line["Description"] for line in items(invoice)]
    assert "Bob Babbage" in descriptions[1] and "(timesheet ts-2)" in descriptions[1]
    assert invoice["CustomerMemo"]["value"] == (
        "Hours worked 2026-11-23 to 2026-11-29. Timesheets: ts-1 (Ada Lovelace), "
        "ts-2 (Bob Babbage), ts-3 (Ada Lovelace)."
    )
    assert len(qbo.updated_bodies) == 2
    for body in qbo.updated_bodies:
        assert body["sparse"] is True and body["SyncToken"]
        # sparse=true with a Line array replaces every line: the earlier ones are sent back.
        assert [line.get("Id") for line in body["Line"]][:1] == ["1"]
        check_xsd(body)


def test_a_withdrawn_approval_takes_only_its_lines_off_the_invoice(workspace, post_event, qbo):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}))
    keys = [r.key for r in draft_rows()]

    post_event(workspace, withdrawal("ts-2"))

    (invoice,) = qbo.invoices.values()
    assert amounts(invoice) == [Decimal("27.5"), Decimal("41.25")]
    assert f"tsi-key: {keys[1]}" not in invoice["PrivateNote"]
    assert f"tsi-key: {keys[0]}" in invoice["PrivateNote"]
    assert "ts-2" not in invoice["CustomerMemo"]["value"]
    assert [r.status for r in draft_rows()] == ["drafted", "voided", "drafted"]
    check_xsd(qbo.updated_bodies[-1])

    post_event(workspace, withdrawal("ts-1"))
    post_event(workspace, withdrawal("ts-3"))
    assert qbo.invoices == {}  # the last lines withdrawn: the unsent invoice is deleted
    assert [p.status for p in period_invoices()] == ["voided"]


def test_an_invoice_finance_sent_opens_a_new_one_for_the_rest_of_the_period(
    workspace, post_event, qbo
):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (first_id,) = qbo.invoices
    qbo.edit_invoice(first_id, EmailStatus="EmailSent")  # sent from QuickBooks, no webhook yet

    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))

    assert len(qbo.invoices) == 2
    assert amounts(qbo.invoices[first_id]) == [Decimal("27.5")]  # never appended to
    assert qbo.updated_bodies == []
    row = draft_rows()[1]
    assert row.provider_id != first_id
    assert "already sent by finance" in (row.hold_message or "")


def test_a_partly_paid_invoice_is_never_appended_to(workspace, post_event, qbo):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (first_id,) = qbo.invoices
    qbo.edit_invoice(first_id, Balance=10.0)  # a payment recorded without sending

    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    assert len(qbo.invoices) == 2 and qbo.updated_bodies == []


def test_a_5010_sync_token_conflict_reads_again_and_keeps_finance_edits(workspace, post_event, qbo):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (invoice_id,) = qbo.invoices

    def finance_edits_meanwhile(request: Any) -> Any:
        # Between our read and our update, finance changes a line's text in QuickBooks.
        qbo.invoices[invoice_id]["Line"][0]["Description"] += " (reviewed)"
        qbo.edit_invoice(invoice_id)
        return (400, {"Content-Type": "application/json"}, json.dumps(FAULT_5010))

    qbo.inject("POST", "invoice", finance_edits_meanwhile)
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))

    (invoice,) = qbo.invoices.values()
    assert len(qbo.created_bodies["invoice"]) == 1
    assert amounts(invoice) == [Decimal("27.5"), Decimal("13.75")]
    assert items(invoice)[0]["Description"].endswith("(reviewed)")  # the edit survived
    assert [r.status for r in draft_rows()] == ["drafted", "drafted"]


def test_a_lost_update_answer_is_not_appended_twice(workspace, post_event, qbo):
    from tests.providers.qbo_fixtures import timeout_after

    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    qbo.inject("POST", "invoice", timeout_after(qbo))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    row = draft_rows()[1]
    if row.status != "drafted":
        pipeline.bill_timesheet_now(workspace.id, row.timesheet_pk, current_app.config)
    (invoice,) = qbo.invoices.values()
    assert amounts(invoice) == [Decimal("27.5"), Decimal("13.75")]
    assert draft_rows()[1].status == "drafted"


def test_concurrent_approvals_update_one_invoice_without_losing_a_line(app, workspace, qbo):
    approvals = [
        approval(f"ts-{n}", "u-ada" if n % 2 else "u-bob", {day(n % 5): 30 + n}) for n in range(5)
    ]
    ts_pks = []
    with db.new_session() as s:
        ws = s.get(Workspace, workspace.id)
        for doc in approvals:
            event = parse_event(json.dumps(doc).encode())
            ts_row = pipeline.timesheet_row(s, ws, "webwork", event.timesheet_id)
            pipeline.apply_approval(s, ws, ts_row, event, current_app.config)
            s.commit()
            ts_pks.append(ts_row.id)

    barrier = threading.Barrier(len(ts_pks))
    errors: list[BaseException] = []

    def bill(ts_pk: int) -> None:
        with app.app_context():
            barrier.wait()
            for _ in range(20):
                try:
                    pipeline.bill_timesheet_now(workspace.id, ts_pk, current_app.config)
                    return
                except RetryLater:
                    continue
                except BaseException as exc:  # reported below
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=bill, args=(pk,)) for pk in ts_pks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (invoice,) = qbo.invoices.values()
    assert sorted(amounts(invoice)) == sorted(
        Decimal(x) for x in ("13.75", "14.21", "14.67", "15.13", "15.58")
    )
    assert [r.status for r in draft_rows()] == ["drafted"] * 5
    assert len(period_invoices()) == 1


def test_a_timesheet_across_a_week_boundary_goes_on_both_weeks_invoices(workspace, post_event, qbo):
    post_event(workspace, approval("ts-1", "u-ada", {day(1): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(8): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(5): 60, day(7): 120}))

    first, second = sorted(qbo.invoices.values(), key=lambda inv: int(inv["Id"]))
    assert amounts(first) == [Decimal("27.5"), Decimal("27.5")]
    assert amounts(second) == [Decimal("13.75"), Decimal("55")]
    assert len(qbo.created_bodies["invoice"]) == 2
    for body in qbo.updated_bodies:
        check_xsd(body)

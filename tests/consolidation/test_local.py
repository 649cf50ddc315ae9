"""Issue #13 part 1 on the built-in ledger: per_period consolidation end to end."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import current_app

from connector.models import LocalInvoice
from tests.consolidation.helpers import (
    approval,
    draft_rows,
    period_invoices,
    set_consolidation,
    withdrawal,
)
from tests.helpers import map_clients_locally
from tests.test_rebill import ledger, live_invoices

MON = date(2026, 11, 23)


def day(n: int) -> date:
    return date(2026, 11, 23 + n) if n < 8 else date(2026, 12, n - 7)


def setup(workspace) -> str:  # type: ignore[no-untyped-def]
    customers = map_clients_locally(workspace.id, {"cl-acme": ("Acme Corp", "ap@acme.example")})
    set_consolidation(workspace.id)
    return customers["cl-acme"]


def lines_by_key(invoice: LocalInvoice) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in invoice.lines:
        out.setdefault(line["draft_key"], []).append(line["amount"])
    return out


def test_three_approvals_of_two_members_in_one_week_make_one_draft(workspace, post_event):
    acme = setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60, day(1): 120}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}, rate="30.00"))

    invoices = live_invoices()
    assert len(invoices) == 1
    invoice = invoices[0]
    assert invoice.customer_id == acme
    assert len(invoice.lines) == 3
    # Totals are sums of the lines, each rounded on its own.
    assert invoice.total == sum(Decimal(line["amount"]) for line in invoice.lines)
    assert invoice.total == Decimal("82.50") + Decimal("13.75") + Decimal("45.00")
    descriptions = " | ".join(line["description"] for line in invoice.lines)
    for who, ts in (("Ada Lovelace", "ts-1"), ("Bob Babbage", "ts-2"), ("Ada Lovelace", "ts-3")):
        assert who in descriptions and f"(timesheet {ts})" in descriptions
    assert "ts-1 (Ada Lovelace), ts-2 (Bob Babbage), ts-3 (Ada Lovelace)" in invoice.memo
    assert "2026-11-23 to 2026-11-29" in invoice.memo
    rows = draft_rows()
    assert [r.status for r in rows] == ["drafted"] * 3
    assert {r.provider_id for r in rows} == {str(invoice.id)}
    assert len(period_invoices()) == 1


def test_a_withdrawn_approval_takes_only_its_own_lines(workspace, post_event):
    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}))
    keys = [r.key for r in draft_rows()]

    post_event(workspace, withdrawal("ts-2"))

    (invoice,) = live_invoices()
    assert set(lines_by_key(invoice)) == {keys[0], keys[2]}
    assert invoice.total == Decimal("27.50") + Decimal("41.25")
    assert "ts-2" not in invoice.memo and "ts-1 (Ada Lovelace), ts-3" in invoice.memo
    assert [r.status for r in draft_rows()] == ["drafted", "voided", "drafted"]


def test_the_last_withdrawn_approval_deletes_the_unsent_draft(workspace, post_event):
    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, withdrawal("ts-1"))
    post_event(workspace, withdrawal("ts-2"))

    assert live_invoices() == []
    assert [inv.state for inv in ledger()] == ["deleted"]
    assert [p.status for p in period_invoices()] == ["voided"]

    # The next approval of the week opens a new draft.
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}))
    (invoice,) = live_invoices()
    assert len(invoice.lines) == 1


def test_a_reapproval_replaces_only_its_own_lines(workspace, post_event):
    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(
        workspace,
        approval("ts-1", "u-ada", {day(0): 120}, timestamp="2026-11-30T11:00:00Z"),
    )

    (invoice,) = live_invoices()
    assert sorted(line["amount"] for line in invoice.lines) == ["13.75", "55.00"]
    assert invoice.total == Decimal("68.75")


def test_a_sent_draft_is_never_appended_to(workspace, post_event, client):
    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (first,) = live_invoices()
    from connector import db

    with db.session_scope() as s:
        s.get(LocalInvoice, first.id).state = "sent"  # finance sent it in the ledger

    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))

    invoices = live_invoices()
    assert len(invoices) == 2
    assert [len(inv.lines) for inv in invoices] == [1, 1]
    assert invoices[0].total == Decimal("27.50")  # untouched
    row = draft_rows()[1]
    assert row.status == "drafted" and row.provider_id == str(invoices[1].id)
    assert "already sent by finance" in (row.hold_message or "")
    assert [p.status for p in period_invoices()] == ["closed", "drafted"]
    # The API (and the console's draft list, from the same field) says why there are two.
    res = client.get("/api/v1/timesheets/ts-2/drafts", headers=workspace.auth)
    assert "already sent by finance" in res.json["drafts"][0]["hold_message"]

    # The third approval goes on the new draft, not on the sent one.
    post_event(workspace, approval("ts-3", "u-ada", {day(4): 30}))
    assert [len(inv.lines) for inv in live_invoices()] == [1, 2]


def test_per_timesheet_stays_the_default(workspace, post_event):
    map_clients_locally(workspace.id, {"cl-acme": ("Acme Corp", "ap@acme.example")})
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    assert len(live_invoices()) == 2
    assert period_invoices() == []


def test_approvals_of_different_weeks_get_different_drafts(workspace, post_event):
    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(7): 30}))
    assert len(live_invoices()) == 2


def test_settings_api_sets_and_checks_consolidation(workspace, client):
    res = client.patch(
        "/api/v1/settings",
        json={"settings": {"consolidation": "per_period", "period": "monthly"}},
        headers=workspace.auth,
    )
    assert res.status_code == 200, res.json
    got = client.get("/api/v1/settings", headers=workspace.auth).json["settings"]
    assert (got["consolidation"], got["period"], got["week_start"]) == (
        "per_period",
        "monthly",
        "monday",
    )
    for body, field in (
        ({"consolidation": "per_week"}, "/settings/consolidation"),
        ({"period": "daily"}, "/settings/period"),
        ({"week_start": 1}, "/settings/week_start"),
    ):
        bad = client.patch("/api/v1/settings", json={"settings": body}, headers=workspace.auth)
        assert bad.status_code == 422, body
        assert bad.json["field"].endswith(field.rsplit("/", 1)[1]), bad.json


def test_a_customer_override_consolidates_only_that_customer(workspace, post_event, client):
    acme = map_clients_locally(workspace.id, {"cl-acme": ("Acme Corp", "ap@acme.example")})[
        "cl-acme"
    ]
    res = client.put(
        f"/api/v1/customers/{acme}/settings",
        json={"consolidation": "per_period", "period": "weekly", "week_start": "wednesday"},
        headers=workspace.auth,
    )
    assert res.status_code == 200, res.json
    # Weeks start on Wednesday 2026-11-25: Tuesday's hours are in the week before.
    post_event(workspace, approval("ts-1", "u-ada", {day(2): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(4): 30}))
    post_event(workspace, approval("ts-3", "u-bob", {day(1): 30}))
    assert [len(inv.lines) for inv in live_invoices()] == [2, 1]
    assert [(p.period_start, p.period_end) for p in period_invoices()] == [
        (date(2026, 11, 25), date(2026, 12, 1)),
        (date(2026, 11, 18), date(2026, 11, 24)),
    ]


def test_a_timesheet_spanning_two_weeks_splits_its_lines_by_day(workspace, post_event):
    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(1): 60}))  # week of 11-23
    post_event(workspace, approval("ts-2", "u-bob", {day(8): 30}))  # week of 11-30
    # Thursday to Wednesday: two days in each week.
    post_event(
        workspace,
        approval("ts-3", "u-ada", {day(3): 60, day(4): 60, day(7): 120, day(9): 30}),
    )

    first, second = live_invoices()
    assert sorted(line["amount"] for line in first.lines) == ["27.50", "55.00"]
    assert sorted(line["amount"] for line in second.lines) == ["13.75", "68.75"]
    assert "2026-11-23 to 2026-11-29" in first.memo and "ts-3" in first.memo
    assert "2026-11-30 to 2026-12-06" in second.memo and "ts-3" in second.memo
    rows = [r for r in draft_rows() if "@" in r.subject_key]
    assert len(rows) == 2 and all(r.status == "drafted" for r in rows)

    # Withdrawn: both parts go, the other approvals' lines stay.
    post_event(workspace, withdrawal("ts-3"))
    assert [[line["amount"] for line in inv.lines] for inv in live_invoices()] == [
        ["27.50"],
        ["13.75"],
    ]


def test_a_split_part_waiting_for_the_provider_is_not_lost_on_replan(
    workspace, post_event, monkeypatch
):
    """One period's part is on its draft, the other's append was refused: the retry re-plans and
    must keep the failed part (its rows share project and client with the created one)."""
    from connector import pipeline
    from connector.providers.base import Rejected
    from connector.providers.local import LocalProvider

    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(1): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(8): 30}))
    original = LocalProvider.append_lines
    failed = []

    def fail_second_week(self, provider_id, draft):  # type: ignore[no-untyped-def]
        if draft.lines[0].period_start >= day(7):
            failed.append(draft.key)
            raise Rejected("the ledger is closed for maintenance")
        return original(self, provider_id, draft)

    monkeypatch.setattr(LocalProvider, "append_lines", fail_second_week)
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 60, day(7): 120}))
    assert failed
    monkeypatch.setattr(LocalProvider, "append_lines", original)
    ts3 = [r for r in draft_rows() if "@" in r.subject_key]
    assert sorted(r.status for r in ts3) == ["drafted", "failed"]
    pipeline.bill_timesheet_now(
        workspace.id, ts3[0].timesheet_pk, current_app.config, retry_failed=True
    )

    assert [sorted(line["amount"] for line in inv.lines) for inv in live_invoices()] == [
        ["27.50", "27.50"],
        ["13.75", "55.00"],
    ]
    # The refused part was planned again (what is left of the timesheet is in one period now);
    # its refused row is superseded, never billed.
    ts3_rows = [r for r in draft_rows() if r.timesheet_pk == ts3[0].timesheet_pk]
    assert sorted(r.status for r in ts3_rows) == ["drafted", "drafted", "superseded"]
    assert sum(r.minutes for r in ts3_rows if r.status == "drafted") == 180


def test_a_draft_the_status_sync_saw_sent_is_not_even_asked(workspace, post_event, monkeypatch):
    from connector import db
    from connector.models import Invoice
    from connector.providers.local import LocalProvider

    setup(workspace)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    with db.session_scope() as s:
        s.get(Invoice, draft_rows()[0].invoice_id).provider_status = "sent"  # from a webhook

    def never(self, provider_id, draft):  # type: ignore[no-untyped-def]
        raise AssertionError("appended to a sent draft")

    monkeypatch.setattr(LocalProvider, "append_lines", never)
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    assert [len(inv.lines) for inv in live_invoices()] == [1, 1]
    assert "already sent by finance" in (draft_rows()[1].hold_message or "")

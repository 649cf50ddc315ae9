"""End to end against a stateful fake WebWork: approve -> drafts to the cent; unapprove ->
withdrawn; edit + re-approve -> replaced; a webhook for the same approval -> nothing new."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from connector import db
from connector.models import (
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    LocalInvoice,
    Timesheet,
    TimesheetStatus,
)
from webhooks.webwork.poller import poll_workspace
from webhooks.webwork.tests.conftest import ADA, GRACE, week_rows


def live_drafts(workspace_id: int, timesheet_id: str) -> dict[str, tuple[str, Decimal | None]]:
    with db.new_session() as s:
        ts = s.scalars(
            select(Timesheet).where(
                Timesheet.workspace_id == workspace_id, Timesheet.timesheet_id == timesheet_id
            )
        ).one()
        return {
            d.customer_name or d.subject_key: (d.status, d.total)
            for d in s.scalars(
                select(Draft).where(Draft.timesheet_pk == ts.id, Draft.revision == ts.revision)
            )
        }


def all_drafts(workspace_id: int) -> list[tuple[str | None, str, Decimal | None]]:
    with db.new_session() as s:
        return [
            (d.customer_name, d.status, d.total)
            for d in s.scalars(
                select(Draft).where(Draft.workspace_id == workspace_id).order_by(Draft.id)
            )
        ]


TS_ID = "tS+a/b==Q1"  # opaque ids may hold +, / and =


def _approve_two(workspace: Any, webwork: Any) -> str:
    """Ada's and Grace's approvals (and an open sheet) polled once: drafts to the cent."""
    ts_id = TS_ID
    webwork.add_timesheet(ts_id, ADA, "2026-11-02", "2026-11-08", week_rows())
    webwork.add_timesheet(
        "grace-1",
        GRACE,
        "2026-11-02",
        "2026-11-08",
        {"2026-11-02": [(101, "Website", 5003, 60)], "2026-11-03": [(102, "Mobile App", None, 90)]},
    )
    webwork.add_timesheet(
        "grace-open",
        GRACE,
        "2026-11-09",
        "2026-11-15",
        {"2026-11-09": [(101, "Website", 5003, 60)]},
        status="submitted",
    )

    report = poll_workspace(workspace.id)
    assert (report.timesheets, report.new_approvals, report.withdrawals) == (3, 2, 0)
    # One read per approval: the list page carried the rows; nothing was read one by one.
    assert [q for q in webwork.api_calls("timesheets") if "id" in q] == []
    assert [path for (_, path, _) in webwork.calls] == [
        "workspaces",  # connecting
        "projects",
        "project-viewers",
        "contracts",
        "timesheets",
    ]
    # Grace: 60 min at her contract's 27.50/h + 90 min of Mobile App at its project rate 80/h.
    assert live_drafts(workspace.id, "grace-1") == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("147.50")),
    }

    # Rate change on Wednesday: 340 min at 100/h + 200 min at 120/h; Pipeline 185 min at 95/h.
    assert live_drafts(workspace.id, ts_id) == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("966.67")),
        "Initech": (DraftStatus.DRAFTED, Decimal("292.92")),
    }
    with db.new_session() as s:
        delivery = s.scalars(select(Delivery).where(Delivery.timesheet_id == ts_id)).one()
        assert delivery.headers == {"x-delivered-by": "webwork-poll"}
        assert delivery.source == "webwork" and delivery.timesheet_id == ts_id
        assert delivery.status == DeliveryStatus.PROCESSED
        ts = s.scalars(select(Timesheet).where(Timesheet.timesheet_id == ts_id)).one()
        assert ts.summary["excluded_minutes"] == 45  # Internal is not billable in WebWork

    # The id went to WebWork whole (percent-encoded on the wire, decoded by the fake).
    assert poll_workspace(workspace.id).new_approvals == 0  # nothing new: nothing billed twice
    assert len(all_drafts(workspace.id)) == 3
    return ts_id


def test_a_webhook_for_a_polled_approval_bills_nothing_new(
    workspace: Any, webwork: Any, connected: str, mapped: Any, post_event: Any
) -> None:
    ts_id = _approve_two(workspace, webwork)
    # A (thin) webhook for the same approval: filled from WebWork, same revision, nothing new.
    thin = {
        "type": "timesheet.approved",
        "timestamp": "2026-11-09T10:00:00Z",
        "data": {"workspace_id": "4242", "timesheet": {"id": ts_id}},
    }
    assert post_event(workspace, thin).status_code == 202
    assert len([q for q in webwork.api_calls("timesheets") if "id" in q]) == 1  # filled
    # A full webhook carrying WebWork's own rows (no clients, no billable flags): the rows are
    # re-read from WebWork, so the content revision is the same and nothing new is billed.
    raw = webwork.get(ts_id)
    full = {
        "type": "timesheet.approved",
        "timestamp": "2026-11-09T10:00:05Z",
        "data": {
            "workspace_id": "4242",
            "timesheet": {
                k: raw[k]
                for k in ("id", "member", "date_from", "date_to", "status", "daily_breakdown")
            },
        },
    }
    assert post_event(workspace, full).status_code == 202
    assert len(all_drafts(workspace.id)) == 3
    assert {status for (_, status, _) in all_drafts(workspace.id)} == {DraftStatus.DRAFTED}


def test_unapprove_edit_and_reapprove_in_webwork(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    ts_id = _approve_two(workspace, webwork)
    # Taken back in WebWork: the poll withdraws the drafts.
    webwork.get(ts_id)["status"] = "submitted"
    assert poll_workspace(workspace.id).withdrawals == 1
    assert live_drafts(workspace.id, "grace-1") == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("147.50")),
    }
    with db.new_session() as s:
        ts = s.scalars(select(Timesheet).where(Timesheet.timesheet_id == ts_id)).one()
        assert ts.status == TimesheetStatus.WITHDRAWN
        assert {d.status for d in ts.drafts} == {DraftStatus.VOIDED}

    # Edited (Pipeline Thursday 125 -> 65 min) and approved again: new drafts replace them.
    rows = week_rows()
    rows["2026-11-05"] = [(201, "Data Pipeline", 5002, 65)]
    webwork.set_rows(webwork.get(ts_id), rows)
    webwork.get(ts_id)["status"] = "approved"
    assert poll_workspace(workspace.id).new_approvals == 1
    assert live_drafts(workspace.id, ts_id) == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("966.67")),
        "Initech": (DraftStatus.DRAFTED, Decimal("197.92")),  # 125 min at 95/h
    }
    # Edited again while approved (no unapproval seen): the newer revision replaces the drafts.
    rows["2026-11-05"] = [(201, "Data Pipeline", 5002, 5)]
    webwork.set_rows(webwork.get(ts_id), rows)
    assert poll_workspace(workspace.id).new_approvals == 1
    assert live_drafts(workspace.id, ts_id)["Initech"] == (DraftStatus.DRAFTED, Decimal("102.92"))
    with db.new_session() as s:
        live_invoices = [i for i in s.scalars(select(LocalInvoice)) if i.state == "draft"]
    assert sorted(i.total for i in live_invoices) == [
        Decimal("102.92"),
        Decimal("147.50"),
        Decimal("966.67"),
    ]


def test_admin_rate_of_the_same_scope_and_day_wins_over_webwork(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    from datetime import date

    from connector.models import Rate

    with db.session_scope() as s:
        s.add(
            Rate(
                workspace_id=workspace.id,
                contract_id="5001",
                amount=Decimal("130.00"),
                currency="USD",
                effective_from=date(2026, 11, 4),
            )
        )
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    poll_workspace(workspace.id)
    # 340 min at WebWork's 100/h + 200 min at the admin's 130/h (not WebWork's 120/h).
    assert live_drafts(workspace.id, "ts-1")["Globex Corporation"] == (
        DraftStatus.DRAFTED,
        Decimal("1000.00"),
    )


def test_a_big_poll_costs_pages_and_catalog_only(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.page_cap = 20
    for i in range(50):
        webwork.add_timesheet(
            f"ts-{i:03d}",
            GRACE,
            "2026-11-02",
            "2026-11-08",
            {"2026-11-02": [(101, "Website", 5003, 60)]},
        )
    webwork.calls.clear()
    report = poll_workspace(workspace.id)
    assert report.new_approvals == 50 and report.pages == 3
    assert len(webwork.calls) == 3 + 3  # 3 pages + projects, viewers, contracts
    with db.new_session() as s:
        assert (
            s.scalar(select(func.count(Draft.id)).where(Draft.status == DraftStatus.DRAFTED)) == 50
        )

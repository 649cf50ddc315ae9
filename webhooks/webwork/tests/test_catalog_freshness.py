"""Fresh catalog: a timesheet naming a project or contract the cached catalog does not know
refreshes it before billing; unknown billability is never billed as billable; and
``tracker poll --refresh-rates`` re-bills unsent drafts priced at a rate that changed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import Delivery, Draft, DraftStatus, Job, JobState, LocalInvoice, Timesheet
from webhooks.webwork.poller import poll_workspace
from webhooks.webwork.tests.conftest import ADA, week_rows
from webhooks.webwork.tests.test_poll_e2e import live_drafts


def catalog_reads(webwork: Any) -> int:
    return len(webwork.api_calls("contracts"))


def test_a_contract_created_since_the_catalog_was_cached_is_billed_at_its_rate(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    poll_workspace(workspace.id)  # catalog cached (for an hour)
    assert catalog_reads(webwork) == 1
    # In WebWork: Ada gets a contract on Mobile App at 200/h (the project's own rate is 80/h).
    webwork.contracts.append(
        {"id": 5009, "user_id": 77, "project_id": 102, "rate": "200.00", "currency": "USD"}
    )
    webwork.add_timesheet(
        "ts-new", ADA, "2026-11-02", "2026-11-08", {"2026-11-02": [(102, "Mobile App", 5009, 60)]}
    )
    report = poll_workspace(workspace.id)
    assert report.catalog_refreshes == 1 and catalog_reads(webwork) == 2
    assert live_drafts(workspace.id, "ts-new") == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("200.00"))
    }
    # Known now: the next poll reads no catalog.
    poll_workspace(workspace.id)
    assert catalog_reads(webwork) == 2


def test_a_new_project_is_read_before_billing_and_its_billability_kept(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    poll_workspace(workspace.id)
    webwork.projects.append({"id": 401, "name": "Research", "is_billable": False})
    webwork.add_timesheet(
        "ts-r",
        ADA,
        "2026-11-02",
        "2026-11-08",
        {"2026-11-02": [(401, "Research", None, 120), (201, "Data Pipeline", 5002, 60)]},
    )
    poll_workspace(workspace.id)
    assert live_drafts(workspace.id, "ts-r") == {
        "Initech": (DraftStatus.DRAFTED, Decimal("95.00"))  # Research is not billable
    }
    with db.new_session() as s:
        ts = s.scalars(select(Timesheet).where(Timesheet.timesheet_id == "ts-r")).one()
        assert ts.summary["excluded_minutes"] == 120


def test_unknown_billability_waits_never_billed_then_billed_when_known(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    poll_workspace(workspace.id)
    # A project WebWork's project list does not show (yet): nobody knows if it is billable.
    webwork.add_timesheet(
        "ts-x", ADA, "2026-11-02", "2026-11-08", {"2026-11-02": [(777, "Secret", None, 60)]}
    )
    poll_workspace(workspace.id)
    assert catalog_reads(webwork) == 2  # one refresh looked for it
    with db.new_session() as s:
        delivery = s.scalars(select(Delivery).where(Delivery.timesheet_id == "ts-x")).one()
        job = s.scalars(select(Job).where(Job.delivery_id == delivery.id)).one()
        assert job.state == JobState.WAITING and job.wait_reason == "tracker_data"
        assert "777" in (job.last_error or "") and "billable" in (job.last_error or "")
        assert s.scalars(select(Draft)).all() == []  # nothing billed, not even as billable
    # Still missing: later polls spend no further refresh on it.
    poll_workspace(workspace.id)
    assert catalog_reads(webwork) == 2
    # WebWork lists it (billable, Globex's): the refresh wakes the waiting approval, billed.
    webwork.projects.append({"id": 777, "name": "Secret", "is_billable": True, "rate": "50.00"})
    webwork.viewers[0]["projects"].append({"id": 777})
    result = app.test_cli_runner().invoke(
        args=["tracker", "poll", str(workspace.id), "--refresh-rates"]
    )
    assert result.exit_code == 0, result.output
    with db.new_session() as s:
        assert s.get(Job, job.id).state == JobState.DONE
    assert live_drafts(workspace.id, "ts-x") == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("50.00"))
    }


def test_refresh_rates_rebills_unsent_drafts_whose_rate_changed(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    webwork.add_timesheet(
        "ts-sent",
        ADA,
        "2026-11-09",
        "2026-11-15",
        {"2026-11-09": [(201, "Data Pipeline", 5002, 60)]},
    )
    poll_workspace(workspace.id)
    assert live_drafts(workspace.id, "ts-1")["Initech"] == (DraftStatus.DRAFTED, Decimal("292.92"))
    with db.session_scope() as s:  # finance sent ts-sent's invoice already
        ts = s.scalars(select(Timesheet).where(Timesheet.timesheet_id == "ts-sent")).one()
        for draft in ts.drafts:
            draft.provider_status = "sent"
    webwork.contracts[1]["rate"] = "99.00"  # Ada's Data Pipeline contract: 95 -> 99
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tracker", "poll", str(workspace.id)])
    assert "rates refreshed" not in result.output  # the cache holds: nothing re-billed
    assert live_drafts(workspace.id, "ts-1")["Initech"][1] == Decimal("292.92")
    result = runner.invoke(args=["tracker", "poll", str(workspace.id), "--refresh-rates"])
    assert result.exit_code == 0, result.output
    assert (
        "1 approval(s) with unsent drafts at a changed rate queued for a re-bill" in result.output
    )
    assert "1 approval(s) at a changed rate were already sent" in result.output
    drafts = live_drafts(workspace.id, "ts-1")
    assert drafts["Initech"] == (DraftStatus.DRAFTED, Decimal("305.25"))  # 185 min at 99/h
    assert drafts["Globex Corporation"] == (DraftStatus.DRAFTED, Decimal("966.67"))  # unchanged
    assert live_drafts(workspace.id, "ts-sent")["Initech"][1] == Decimal("95.00")
    with db.new_session() as s:
        live = sorted(i.total for i in s.scalars(select(LocalInvoice)) if i.state == "draft")
    assert live == [Decimal("95.00"), Decimal("305.25"), Decimal("966.67")]
    # A second refresh with nothing changed re-bills nothing.
    result = runner.invoke(args=["tracker", "poll", str(workspace.id), "--refresh-rates"])
    assert "0 approval(s) with unsent drafts" in result.output

"""Backfill: ``tracker backfill WORKSPACE_ID --since DATE [--dry-run]`` and ``tracker poll``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from connector import db
from connector.models import (
    Connection,
    Delivery,
    Draft,
    Job,
    TrackerEntity,
    TrackerRate,
    TrackerTimesheetSeen,
)
from webhooks.webwork.tests.conftest import ADA, GRACE, week_rows
from webhooks.webwork.tests.fake import status


def counts() -> dict[str, int]:
    with db.new_session() as s:
        return {
            model.__tablename__: int(s.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Delivery, Draft, TrackerTimesheetSeen, TrackerRate, TrackerEntity)
        }


def add_weeks(webwork: Any) -> None:
    webwork.page_cap = 10
    for week in range(12):  # Ada's weeks from 2026-09-07: 3 customers' rows each
        start = f"2026-{9 + (7 + 7 * week) // 30:02d}-01"
        webwork.add_timesheet(
            f"ada+{week}/w=",
            ADA,
            start,
            start,
            {
                start: [(101, "Website", 5001, 60), (201, "Data Pipeline", 5002, 30)],
            },
        )
    webwork.add_timesheet(
        "grace-old", GRACE, "2026-05-04", "2026-05-10", {"2026-05-04": [(101, "Website", 5003, 60)]}
    )
    webwork.add_timesheet(
        "grace-open",
        GRACE,
        "2026-10-05",
        "2026-10-11",
        {"2026-10-05": [(101, "Website", 5003, 60)]},
        status="submitted",
    )


def test_dry_run_creates_nothing_anywhere(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    add_weeks(webwork)
    with db.new_session() as s:
        meta_before = dict(s.scalars(select(Connection)).one().meta or {})
    before = counts()
    result = app.test_cli_runner().invoke(
        args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert counts() == before
    with db.new_session() as s:
        assert dict(s.scalars(select(Connection)).one().meta or {}) == meta_before
        assert s.scalars(select(Job).where(Job.kind == "process_delivery")).first() is None
    assert "DRY RUN" in result.output
    assert "12 approved timesheet(s) found" in result.output
    assert "drafts it would create: 24; holds: 0" in result.output
    assert {q.get("status", [""])[0] for q in webwork.api_calls("timesheets")} == {"approved"}


def test_backfill_creates_drafts_and_is_safe_to_interrupt_and_rerun(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    add_weeks(webwork)
    runner = app.test_cli_runner()
    served = []

    def fail_on_page_2(path: str, query: dict[str, list[str]]) -> None:
        if path == "timesheets" and query.get("page") == ["2"] and not served:
            served.append(True)
            webwork.fail_next(*[status(503)] * 5)  # the run is interrupted

    webwork.on_call = fail_on_page_2
    first = runner.invoke(args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01"])
    assert first.exit_code != 0 and "run the same command again" in first.output
    assert counts()["deliveries"] == 10
    again = runner.invoke(args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01"])
    assert again.exit_code == 0, again.output
    assert "12 approved timesheet(s) found" in again.output and "2 new" in again.output
    assert counts()["deliveries"] == 12 and counts()["drafts"] == 24
    third = runner.invoke(args=["tracker", "backfill", str(workspace.id), "--since", "2026-04-01"])
    assert "13 approved timesheet(s) found" in third.output and "1 new" in third.output
    assert counts()["drafts"] == 25


def test_cli_poll_prints_what_it_found(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tracker", "poll", str(workspace.id)])
    assert result.exit_code == 0, result.output
    assert "1 new approval(s)" in result.output
    # Rates are cached: a rate changed in WebWork is read at the refresh (or on demand).
    webwork.contracts[1]["rate"] = "99.00"
    runner.invoke(args=["tracker", "poll", str(workspace.id)])
    assert len(webwork.api_calls("contracts")) == 1
    runner.invoke(args=["tracker", "poll", str(workspace.id), "--refresh-rates"])
    assert len(webwork.api_calls("contracts")) == 2
    with db.new_session() as s:
        assert (
            str(
                s.scalars(select(TrackerRate).where(TrackerRate.contract_id == "5002")).one().amount
            )
            == "99.00"
        )


def test_projects_and_clients_appear_for_mapping_before_any_approval(
    workspace: Any, webwork: Any, connected: str
) -> None:
    from webhooks.webwork.poller import poll_workspace

    poll_workspace(workspace.id)
    with db.new_session() as s:
        entities = {(e.kind, e.tracker_id): e for e in s.scalars(select(TrackerEntity))}
        rates = {
            (r.contract_id, r.project_id, str(r.effective_from)): r.amount
            for r in s.scalars(select(TrackerRate))
        }
    assert entities[("client", "9001")].name == "Globex Corporation"
    assert entities[("project", "101")].client_id == "9001"
    assert entities[("project", "201")].client_id == "9002"
    assert ("project", "301") in entities
    assert {k: str(v) for k, v in rates.items()} == {
        ("5001", None, "2026-01-01"): "100.00",
        ("5001", None, "2026-11-04"): "120.00",
        ("5002", None, "None"): "95.00",
        ("5003", None, "None"): "27.50",
        (None, "102", "None"): "80.00",
    }


def test_mapping_page_lists_webwork_projects_and_clients_with_suggestions(
    admin_client: Any, workspace: Any, webwork: Any, connected: str
) -> None:
    from connector.models import LocalCustomer
    from webhooks.webwork.poller import poll_workspace

    with db.session_scope() as s:
        s.add(LocalCustomer(workspace_id=workspace.id, name="Globex Corporation", currency="USD"))
    poll_workspace(workspace.id)
    html = admin_client.get(f"/workspaces/{workspace.id}/mappings").get_data(as_text=True)
    assert "Globex Corporation" in html and "Initech" in html and "Data Pipeline" in html


def test_progress_counts_pages_says_would_create_and_created(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    add_weeks(webwork)
    runner = app.test_cli_runner()
    dry = runner.invoke(
        args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01", "--dry-run"]
    )
    assert "page 1/2: 10 approved, 10 new, 20 draft(s) would create" in dry.output
    assert "page 2/2: 12 approved, 12 new, 24 draft(s) would create" in dry.output
    real = runner.invoke(args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01"])
    assert real.exit_code == 0, real.output
    assert "page 2/2: 12 approved, 12 new, 24 draft(s) to create" in real.output
    assert "would" not in real.output
    # The worker drafted them (inline in tests): the end says what was really created.
    assert "drafts created: 24; held: 0; approvals still with the worker: 0" in real.output


def test_ctrl_c_says_what_was_kept_and_how_to_resume(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    add_weeks(webwork)
    interrupted = []

    def ctrl_c_on_page_2(path: str, query: dict[str, list[str]]) -> None:
        if path == "timesheets" and query.get("page") == ["2"] and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt

    webwork.on_call = ctrl_c_on_page_2
    runner = app.test_cli_runner()
    first = runner.invoke(args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01"])
    assert first.exit_code == 130
    assert "Aborted!" not in first.output
    assert "Interrupted after page 1 of 2: the 10 approval(s) recorded so far are kept" in (
        first.output
    )
    assert "Run the same command again to resume" in first.output
    assert counts()["deliveries"] == 10
    again = runner.invoke(args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01"])
    assert again.exit_code == 0 and "12 approved timesheet(s) found" in again.output
    assert "2 new" in again.output and counts()["drafts"] == 24


def test_without_a_worker_the_wait_ends_and_says_so(
    app: Any, workspace: Any, webwork: Any, connected: str, mapped: Any, monkeypatch: Any
) -> None:
    from connector import worker
    from webhooks.webwork import backfill_cli

    add_weeks(webwork)
    monkeypatch.setattr(worker, "job_committed", lambda job_id: None)  # no worker runs them
    monkeypatch.setattr(backfill_cli, "STALLED_SECONDS", 0.0)
    monkeypatch.setattr(backfill_cli.time, "sleep", lambda seconds: None)
    result = app.test_cli_runner().invoke(
        args=["tracker", "backfill", str(workspace.id), "--since", "2026-09-01"]
    )
    assert result.exit_code == 0, result.output
    assert "is a worker running" in result.output
    assert "drafts created: 0; held: 0; approvals still with the worker: 12" in result.output

"""Polling WebWork under bad input and faults: each case keeps every approval billed once,
held with a reason, or waiting for a named thing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connector import db, worker
from connector.locks import advisory_lock
from connector.models import (
    ConnectionStatus,
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    Job,
    JobState,
    Timesheet,
    TrackerTimesheetSeen,
    utcnow,
)
from tests.app_fixtures import csrf_token
from webhooks.webwork import connection as conn
from webhooks.webwork.client import ReconnectRequired, Unavailable
from webhooks.webwork.poller import PollBusy, poll_workspace
from webhooks.webwork.polls import JOB_KIND, schedule_poll
from webhooks.webwork.tests.conftest import ADA, GRACE, week_rows
from webhooks.webwork.tests.fake import DROPPED, TIMEOUT, status


def small_rows(minutes: int = 60) -> dict[str, list[tuple[int, str, int | None, int]]]:
    return {"2026-11-02": [(101, "Website", 5003, minutes)]}


def add_many(webwork: Any, n: int, prefix: str = "ts") -> None:
    for i in range(n):
        webwork.add_timesheet(f"{prefix}-{i:03d}", GRACE, "2026-11-02", "2026-11-08", small_rows())


def deliveries() -> list[Delivery]:
    with db.new_session() as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)))


def drafted_timesheets() -> set[str]:
    with db.new_session() as s:
        return set(
            s.scalars(
                select(Timesheet.timesheet_id)
                .join(Draft, Draft.timesheet_pk == Timesheet.id)
                .where(Draft.status == DraftStatus.DRAFTED)
            )
        )


def due_poll_job(workspace_id: int) -> int:
    with db.session_scope() as s:
        job = s.scalars(
            select(Job).where(Job.kind == JOB_KIND, Job.state == JobState.PENDING)
        ).one()
        job.next_attempt_at = utcnow() - timedelta(seconds=1)
        return job.id


def test_malformed_timesheet_is_held_with_its_reason_and_the_poll_goes_on(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    add_many(webwork, 3)
    broken = webwork.add_timesheet("ts-bad", GRACE, "2026-11-02", "2026-11-08", small_rows())
    broken["daily_breakdown"]["2026-11-02"][0]["total_minutes"] = "sixty"
    outside = webwork.add_timesheet("ts-outside", GRACE, "2026-11-02", "2026-11-08", {})
    outside["daily_breakdown"] = {"2026-12-25": [{"project_id": 101, "total_minutes": 5}]}
    report = poll_workspace(workspace.id)
    assert (report.new_approvals, report.invalid) == (3, 2)
    assert drafted_timesheets() == {"ts-000", "ts-001", "ts-002"}
    invalid = [d for d in deliveries() if d.status == DeliveryStatus.INVALID]
    assert {d.timesheet_id for d in invalid} == {"ts-bad", "ts-outside"}
    assert "total_minutes" in (invalid[0].error or "")
    assert "outside" in (invalid[1].error or "")
    # Seen again unchanged: not reported twice. Fixed in WebWork: billed.
    assert poll_workspace(workspace.id).new_approvals == 0
    assert len(deliveries()) == 5
    broken["daily_breakdown"]["2026-11-02"][0]["total_minutes"] = 60
    assert poll_workspace(workspace.id).new_approvals == 1
    assert "ts-bad" in drafted_timesheets()


def test_same_timesheet_on_two_pages_while_the_list_shifts(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.page_cap = 10  # WebWork may serve fewer than asked; the client follows last_page
    add_many(webwork, 15)
    shifted = []

    def shift(path: str, query: dict[str, list[str]]) -> None:
        if path == "timesheets" and query.get("page") == ["2"] and not shifted:
            # An older sheet appears at the front: the last of page 1 is shown again on page 2.
            shifted.append(True)
            webwork.timesheets.insert(
                0,
                {**webwork.get("ts-000"), "id": "ts-late", "status": "approved"},
            )

    webwork.on_call = shift
    report = poll_workspace(workspace.id)
    assert report.timesheets == 15 and report.new_approvals == 15
    assert len({d.timesheet_id for d in deliveries()}) == len(deliveries()) == 15
    # The late sheet that slid in ahead is found by the next poll.
    assert poll_workspace(workspace.id).new_approvals == 1
    assert len(drafted_timesheets()) == 16


def test_faults_mid_poll_keep_what_was_recorded_and_the_next_poll_finishes(
    workspace: Any, webwork: Any, connected: str, mapped: Any, sleeps: list[float]
) -> None:
    webwork.page_cap = 10
    add_many(webwork, 25)
    served = []

    def fail_page_3(path: str, query: dict[str, list[str]]) -> None:
        if path == "timesheets" and query.get("page") == ["3"] and not served:
            served.append(True)
            webwork.fail_next(*[status(502), TIMEOUT, DROPPED, status(500), status(504)])

    webwork.on_call = fail_page_3
    with pytest.raises(Unavailable):
        poll_workspace(workspace.id)
    assert len(deliveries()) == 20  # pages 1-2 recorded, nothing half-written
    assert len(sleeps) == 4  # backed off between the 5 attempts
    report = poll_workspace(workspace.id)
    assert report.new_approvals == 5
    assert len(drafted_timesheets()) == 25


def test_429_storm_in_the_poll_job_schedules_the_next_poll_after_retry_after(
    workspace: Any, webwork: Any, connected: str
) -> None:
    job_id = due_poll_job(workspace.id)
    webwork.fail_next(*[status(429, {"Retry-After": "600"})] * 3)
    assert worker.run_job(job_id) == JobState.DONE
    meta = conn.store_for(workspace.id).meta()
    assert "throttling" in meta["last_error"]
    with db.new_session() as s:
        nxt = s.scalars(
            select(Job).where(Job.kind == JOB_KIND, Job.state == JobState.PENDING)
        ).one()
        assert nxt.next_attempt_at >= utcnow() + timedelta(seconds=590)


def test_revoked_token_holds_until_reconnected_by_hand(
    admin_client: Any, workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    webwork.tokens.pop(connected)  # revoked in WebWork
    job_id = due_poll_job(workspace.id)
    assert worker.run_job(job_id) == JobState.DONE  # held; the next poll job re-checks
    assert conn.store_for(workspace.id).connection().status == ConnectionStatus.RECONNECT_NEEDED
    html = admin_client.get(f"/workspaces/{workspace.id}/connections").get_data(as_text=True)
    assert "Reconnect WebWork" in html and "personal access token" in html
    with pytest.raises(ReconnectRequired):
        poll_workspace(workspace.id)
    # A new token: the scheduled poll is due now and bills the approval, once.
    token = webwork.add_token("501")
    page = f"/workspaces/{workspace.id}/connections"
    admin_client.post(
        f"{page}/webwork/token", data={"csrf_token": csrf_token(admin_client, page), "token": token}
    )
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert drafted_timesheets() == {"ts-1"}
    assert len(deliveries()) == 1


def test_two_pollers_of_one_workspace_one_wins(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    add_many(webwork, 3)
    with advisory_lock(f"webwork-poll:{workspace.id}", ttl=60, timeout=1):
        with pytest.raises(PollBusy):
            poll_workspace(workspace.id)
        job_id = due_poll_job(workspace.id)
        assert worker.run_job(job_id) == JobState.DONE  # the loser just schedules the next one
    assert deliveries() == []
    assert poll_workspace(workspace.id).new_approvals == 3


def test_two_pollers_racing_past_the_lock_still_deliver_once(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    """Even if two pollers both decided a change is new, the database keeps one delivery."""
    from webhooks.webwork.poll_memory import Change, record

    add_many(webwork, 1)
    change = Change("approval", b"{}")

    def deliver() -> tuple[int | None, int | None]:
        return record(
            workspace.id, "ts-000", status="approved", digest="h1", now=utcnow(), change=change
        )

    first = deliver()
    with db.session_scope() as s:  # the second poller's view: it has not seen the first's row
        s.query(TrackerTimesheetSeen).update({"transitions": 0})
    second = deliver()
    assert first[1] is not None and second == (None, None)
    assert len(deliveries()) == 1


def test_connection_removed_mid_poll_stops_cleanly(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.page_cap = 10
    add_many(webwork, 25)

    def disconnect_on_page_2(path: str, query: dict[str, list[str]]) -> None:
        if path == "timesheets" and query.get("page") == ["2"]:
            conn.disconnect(workspace.id)

    webwork.on_call = disconnect_on_page_2
    report = poll_workspace(workspace.id)
    assert report.stopped == "the WebWork connection was removed during the poll"
    assert len(deliveries()) == 10  # page 1 only; nothing after the removal
    with db.new_session() as s:
        assert not s.scalars(
            select(Job).where(Job.kind == JOB_KIND, Job.state == JobState.PENDING)
        ).first()


def test_rates_not_visible_hold_the_draft_never_bill_zero(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.rates_visible = False
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    poll_workspace(workspace.id)
    with db.new_session() as s:
        drafts = list(s.scalars(select(Draft)))
    assert drafts and all(d.status == DraftStatus.NEEDS_RATE for d in drafts)
    assert all(d.total is None for d in drafts)
    assert all(
        "Rates are not visible to the connected WebWork user" in (d.hold_message or "")
        for d in drafts
    )


def test_auto_invoicing_off_keeps_the_delivery_skipped(make_workspace: Any, webwork: Any) -> None:
    ws = make_workspace(tracker_workspace_id="4242", auto_invoicing=False)
    conn.connect_with_token(ws.id, "4242", webwork.add_token(), connected_by="t")
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    poll_workspace(ws.id)
    (delivery,) = deliveries()
    assert delivery.status == DeliveryStatus.SKIPPED
    with db.new_session() as s:
        assert s.scalars(select(Job).where(Job.kind == "process_delivery")).first() is None


def test_thin_webhook_waits_without_webwork_then_is_filled_once_connected(
    workspace: Any, webwork: Any, mapped: Any, post_event: Any
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    thin = {
        "type": "timesheet.approved",
        "timestamp": "2026-11-09T10:00:00Z",
        "data": {"workspace_id": "4242", "timesheet": {"id": "ts-1"}},
    }
    response = post_event(workspace, thin)
    with db.new_session() as s:
        job = s.get(Job, response.get_json()["job_id"])
        assert (job.state, job.wait_reason) == (JobState.WAITING, "tracker_data")
    conn.connect_with_token(workspace.id, "4242", webwork.add_token(), connected_by="t")
    assert drafted_timesheets() == {"ts-1"}
    # The poll that follows sees it as already known: nothing new.
    assert poll_workspace(workspace.id).new_approvals == 0
    assert len(deliveries()) == 1


def test_periodic_poll_now_and_no_webwork_means_no_polling(
    admin_client: Any, make_workspace: Any, workspace: Any, webwork: Any, connected: str
) -> None:
    other = make_workspace(tracker_workspace_id="5555")
    job_id = due_poll_job(workspace.id)
    assert worker.run_job(job_id) == JobState.DONE
    with db.new_session() as s:
        polls = list(s.scalars(select(Job).where(Job.kind == JOB_KIND)))
    assert {j.workspace_id for j in polls} == {workspace.id}  # none for the unconnected one
    pending = [j for j in polls if j.state == JobState.PENDING]
    assert len(pending) == 1
    assert pending[0].next_attempt_at >= utcnow() + timedelta(seconds=290)
    meta = conn.store_for(workspace.id).meta()
    assert meta["last_success_at"] and meta["next_poll_at"]
    # Poll now moves the scheduled poll forward (one pending poll, never two).
    page = f"/workspaces/{workspace.id}/connections"
    admin_client.post(f"{page}/webwork/poll", data={"csrf_token": csrf_token(admin_client, page)})
    schedule_poll(workspace.id)
    with db.new_session() as s:
        assert (
            len(
                list(
                    s.scalars(
                        select(Job).where(Job.kind == JOB_KIND, Job.state == JobState.PENDING)
                    )
                )
            )
            == 1
        )
    assert other.id != workspace.id


def test_two_workspaces_connected_by_one_person_share_the_limiter(
    make_workspace: Any, webwork: Any, limiter: Any
) -> None:
    first = make_workspace(tracker_workspace_id="4242")
    second = make_workspace(tracker_workspace_id="4242", name="Other", tracker_source="webwork2")
    token_a, token_b = webwork.add_token("501"), webwork.add_token("501", n=2)
    conn.connect_with_token(first.id, "4242", token_a, connected_by="t")
    conn.connect_with_token(second.id, "4242", token_b, connected_by="t")
    limiter.calls.clear()
    poll_workspace(first.id)
    poll_workspace(second.id)
    assert {bucket for bucket, _ in limiter.calls} == {"webwork:user-501"}


def live_totals() -> dict[str, list[str]]:
    """Timesheet id -> its live drafts' totals (drafted, current revision), sorted."""
    with db.new_session() as s:
        rows = s.execute(
            select(Timesheet.timesheet_id, Draft.total)
            .join(
                Draft, (Draft.timesheet_pk == Timesheet.id) & (Draft.revision == Timesheet.revision)
            )
            .where(Draft.status == DraftStatus.DRAFTED, Timesheet.status == "approved")
        ).all()
    found: dict[str, list[str]] = {}
    for ts_id, total in rows:
        found.setdefault(ts_id, []).append(str(total))
    return {k: sorted(v) for k, v in found.items()}


def test_faults_on_consecutive_polls_while_webwork_changes_everything_is_billed_after(
    workspace: Any, webwork: Any, connected: str, mapped: Any, limiter: Any
) -> None:
    """A transient 401, a 429, a 5xx and a timeout land on consecutive polls while, in
    WebWork, one approval is edited and re-approved, a new one arrives and another is
    withdrawn: every change is billed within two poll intervals after the faults end."""
    webwork.add_timesheet("edited", ADA, "2026-11-02", "2026-11-08", week_rows())
    webwork.add_timesheet("withdrawn", GRACE, "2026-11-02", "2026-11-08", small_rows(60))
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert live_totals() == {"edited": ["292.92", "966.67"], "withdrawn": ["27.50"]}

    # In WebWork, while the faults land: edited and re-approved, a new one, one taken back.
    def edit() -> None:
        rows = week_rows()
        rows["2026-11-05"] = [(201, "Data Pipeline", 5002, 65)]
        webwork.set_rows(webwork.get("edited"), rows)

    def arrive() -> None:
        webwork.add_timesheet("new", GRACE, "2026-11-02", "2026-11-08", small_rows(120))

    def withdraw() -> None:
        webwork.get("withdrawn")["status"] = "submitted"

    polls = [
        (edit, [status(401)]),  # transient: the same token works a moment later
        (arrive, [status(429, {"Retry-After": "600"})]),  # longer than a poll waits in line
        (withdraw, [status(503)] * 5),  # every attempt of one request
        (None, [TIMEOUT] * 5),
    ]
    for change, burst in polls:
        if change is not None:
            change()
        webwork.fail_next(*burst)
        assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE  # never parked
        assert conn.store_for(workspace.id).connection().status == ConnectionStatus.CONNECTED
    # The transient 401 did not stop the poll it hit: the edit is billed already.
    assert live_totals()["edited"] == ["197.92", "966.67"]
    assert ("webwork:user-501", 600.0) in limiter.pauses  # the 429 paused the user's budget

    # The faults end: within two poll intervals every change is billed.
    expected = {"edited": ["197.92", "966.67"], "new": ["55.00"]}
    for _ in range(2):
        if live_totals() == expected:
            break
        assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert live_totals() == expected
    with db.new_session() as s:
        withdrawn = s.scalars(select(Timesheet).where(Timesheet.timesheet_id == "withdrawn")).one()
        assert {d.status for d in withdrawn.drafts} == {DraftStatus.VOIDED}
    assert [d.status for d in deliveries()].count(DeliveryStatus.PROCESSED) == len(deliveries())

"""A 401 is confirmed before polling stops; a held connection says so, re-checks on a slow
schedule and resumes by itself; nothing parks without a way back."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connector import db, worker
from connector.metrics import render_metrics
from connector.models import ConnectionStatus, Job, JobState, utcnow
from webhooks.webwork import connection as conn
from webhooks.webwork.client import UNAUTHORIZED_BACKOFF_SECONDS
from webhooks.webwork.connection_health import RECHECK_SECONDS
from webhooks.webwork.poller import poll_workspace
from webhooks.webwork.polls import JOB_KIND
from webhooks.webwork.tests.conftest import ADA, week_rows
from webhooks.webwork.tests.fake import status
from webhooks.webwork.tests.test_poll_faults import drafted_timesheets, due_poll_job


def pending_poll() -> Job:
    with db.new_session() as s:
        return s.scalars(
            select(Job).where(Job.kind == JOB_KIND, Job.state == JobState.PENDING)
        ).one()


def connection_status(workspace_id: int) -> str:
    return conn.store_for(workspace_id).connection().status


def test_one_transient_401_is_asked_again_and_polling_goes_on(
    workspace: Any, webwork: Any, connected: str, mapped: Any, sleeps: list[float]
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    webwork.fail_next(status(401))  # the same token works again a moment later
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert connection_status(workspace.id) == ConnectionStatus.CONNECTED
    assert UNAUTHORIZED_BACKOFF_SECONDS in sleeps
    assert drafted_timesheets() == {"ts-1"}
    assert pending_poll().next_attempt_at >= utcnow() + timedelta(seconds=290)


def test_a_confirmed_401_holds_says_so_and_resumes_by_itself(
    admin_client: Any,
    workspace: Any,
    webwork: Any,
    connected: str,
    mapped: Any,
    caplog: Any,
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    role = webwork.tokens.pop(connected)  # WebWork refuses the token for a while
    with caplog.at_level(logging.WARNING):
        assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert connection_status(workspace.id) == ConnectionStatus.RECONNECT_NEEDED
    stopped = [r for r in caplog.records if "polling of workspace" in r.getMessage()]
    assert stopped and stopped[0].levelno == logging.WARNING
    assert f"workspace {workspace.id} stopped" in stopped[0].getMessage()
    assert "refused this connection's token twice" in stopped[0].getMessage()
    # Not parked: a poll job is pending, due on the slow re-check schedule.
    due = pending_poll().next_attempt_at
    assert utcnow() + timedelta(seconds=RECHECK_SECONDS - 20) <= due
    assert due <= utcnow() + timedelta(seconds=RECHECK_SECONDS + 5)
    # The console says when polling stopped, why, and when it checks again.
    html = admin_client.get(f"/workspaces/{workspace.id}/connections").get_data(as_text=True)
    assert "Polling stopped" in html and "refused this connection" in html
    assert "checks again by itself" in html
    metrics = render_metrics().decode()
    assert 'tsi_tracker_connections{status="reconnect_needed",tracker="webwork"} 1.0' in metrics

    # Still refused at the re-check: one cheap call (asked twice), held on, re-scheduled.
    calls = len(webwork.calls)
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert [path for (_, path, _) in webwork.calls[calls:]] == ["workspaces", "workspaces"]
    assert connection_status(workspace.id) == ConnectionStatus.RECONNECT_NEEDED
    assert pending_poll().next_attempt_at > utcnow() + timedelta(seconds=RECHECK_SECONDS - 20)

    # WebWork accepts the token again: the next re-check resumes polling, which bills.
    webwork.tokens[connected] = role
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert connection_status(workspace.id) == ConnectionStatus.CONNECTED
    assert any("resumed" in r.getMessage() for r in caplog.records)
    assert drafted_timesheets() == {"ts-1"}
    meta = conn.store_for(workspace.id).meta()
    assert meta["held_at"] is None and meta["last_error"] is None and meta["resumed_at"]
    metrics = render_metrics().decode()
    assert 'tsi_tracker_connections{status="connected",tracker="webwork"} 1.0' in metrics


def test_a_403_holds_the_same_way_and_resumes_when_the_role_comes_back(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.tokens[connected] = "member"  # demoted in WebWork: 403 on every call
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert connection_status(workspace.id) == ConnectionStatus.RECONNECT_NEEDED
    assert "Owner or Executive manager" in conn.store_for(workspace.id).meta()["held_reason"]
    webwork.tokens[connected] = "executive"
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    assert connection_status(workspace.id) == ConnectionStatus.CONNECTED
    assert drafted_timesheets() == {"ts-1"}


def test_a_webhook_that_meets_a_refusal_waits_and_resumes_with_the_connection(
    workspace: Any, webwork: Any, connected: str, mapped: Any, post_event: Any
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    role = webwork.tokens.pop(connected)
    thin = {
        "type": "timesheet.approved",
        "timestamp": "2026-11-09T10:00:00Z",
        "data": {"workspace_id": "4242", "timesheet": {"id": "ts-1"}},
    }
    job_id = post_event(workspace, thin).get_json()["job_id"]
    with db.new_session() as s:
        assert s.get(Job, job_id).state == JobState.WAITING
    # The refusal held the connection, so the re-check schedule applies to it too.
    assert connection_status(workspace.id) == ConnectionStatus.RECONNECT_NEEDED
    webwork.tokens[connected] = role
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    with db.new_session() as s:
        assert s.get(Job, job_id).state == JobState.DONE
    assert drafted_timesheets() == {"ts-1"}


def test_oauth_401_refreshes_once_and_goes_on(
    admin_client: Any, workspace: Any, webwork: Any
) -> None:
    from webhooks.webwork.tests.test_connect import _oauth_connect

    _oauth_connect(admin_client, workspace, webwork)
    store = conn.store_for(workspace.id)
    webwork.tokens.pop(store.load()["access_token"])  # WebWork dropped the access token
    poll_workspace(workspace.id)
    assert connection_status(workspace.id) == ConnectionStatus.CONNECTED
    assert len([c for c in webwork.token_calls if c["grant_type"] == ["refresh_token"]]) == 1

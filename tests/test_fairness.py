"""Workers share themselves fairly between workspaces: a backlog in one does not hold up another."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from connector import db, worker
from connector.models import Delivery, Draft, Job, Timesheet
from tests.helpers import event, map_clients_locally


def _approval(tracker_workspace_id: str, timesheet_id: str) -> dict[str, Any]:
    doc = event("timesheet_approved__three_customers", workspace_id=tracker_workspace_id)
    doc["data"]["timesheet"]["id"] = timesheet_id
    return doc


@pytest.fixture
def queued(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Approvals wait in the jobs table for a worker instead of running inside the request."""
    monkeypatch.setattr(app.extensions["worker"].huey, "_immediate", False)


def _workspace_of(job_id: int) -> int:
    with db.session_scope() as s:
        return s.get(Job, job_id).workspace_id  # type: ignore[union-attr]


def _run_one() -> int:
    """One free worker takes the next job; returns the workspace it worked for."""
    claimed = worker.jobs.claim_next(worker.settings().lease_seconds)
    assert claimed is not None
    worker.run_claimed(*claimed)
    return _workspace_of(claimed[0])


def test_a_backlog_in_one_workspace_does_not_hold_up_another_workspaces_approval(
    app, make_workspace, post_event, queued
):
    busy = make_workspace(tracker_workspace_id="4242", name="Busy")
    quiet = make_workspace(tracker_workspace_id="5151", name="Quiet")
    map_clients_locally(busy.id)
    map_clients_locally(quiet.id)
    for n in range(40):
        assert post_event(busy, _approval("4242", f"ts_busy_{n:03d}")).status_code == 202
    served = [_run_one() for _ in range(5)]  # the workers are busy with the backlog...
    assert served == [busy.id] * 5

    # ...when the quiet workspace's single approval arrives, behind 35 older jobs.
    assert post_event(quiet, _approval("5151", "ts_quiet")).status_code == 202
    assert _run_one() == quiet.id  # the very next free worker takes it

    with db.session_scope() as s:
        drafts = list(
            s.scalars(
                select(Draft.status)
                .join(Timesheet, Timesheet.id == Draft.timesheet_pk)
                .where(Timesheet.timesheet_id == "ts_quiet")
            )
        )
    assert drafts == ["drafted"] * 3
    # The backlog then goes on and is all billed.
    while (claimed := worker.jobs.claim_next(worker.settings().lease_seconds)) is not None:
        worker.run_claimed(*claimed)
    with db.session_scope() as s:
        statuses = list(s.scalars(select(Draft.status).where(Draft.workspace_id == busy.id)))
    assert statuses == ["drafted"] * 120


def test_two_backlogs_take_turns(app, make_workspace, post_event, queued):
    first = make_workspace(tracker_workspace_id="4242", name="First")
    second = make_workspace(tracker_workspace_id="5151", name="Second")
    map_clients_locally(first.id)
    map_clients_locally(second.id)
    for n in range(6):
        post_event(first, _approval("4242", f"ts_first_{n}"))
    for n in range(6):
        post_event(second, _approval("5151", f"ts_second_{n}"))
    served = [_run_one() for _ in range(12)]
    # Round robin: never more than one job ahead of the other workspace.
    for k in range(1, 13):
        assert abs(served[:k].count(first.id) - served[:k].count(second.id)) <= 1, served
    with db.session_scope() as s:
        assert {d.status for d in s.scalars(select(Delivery))} == {"processed"}

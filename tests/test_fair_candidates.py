"""The claim order in one query: fairest workspace first (fewest claims in the last minute, then
oldest due job), each workspace's jobs oldest first, filled from the next workspace."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connector import db, jobs
from connector.models import Job, JobState, utcnow


def _job(workspace_id: int, age: float, *, claimed: bool = False) -> int:
    now = utcnow()
    with db.session_scope() as s:
        job = Job(
            workspace_id=workspace_id,
            kind="noop",
            payload={},
            state=JobState.DONE if claimed else JobState.PENDING,
            max_attempts=3,
            next_attempt_at=now - timedelta(seconds=age),
            claimed_at=now - timedelta(seconds=1) if claimed else None,
        )
        s.add(job)
        s.flush()
        return job.id


def test_fairest_workspace_first_then_oldest_job_then_the_next_workspace(
    app: Any, make_workspace: Any
) -> None:
    busy = make_workspace(tracker_workspace_id="1", name="Busy")
    quiet = make_workspace(tracker_workspace_id="2", name="Quiet")
    other = make_workspace(tracker_workspace_id="3", name="Other")
    _job(busy.id, 0, claimed=True)  # served in the last minute: goes last
    busy_old = _job(busy.id, 300)
    quiet_new, quiet_old = _job(quiet.id, 5), _job(quiet.id, 50)
    other_job = _job(other.id, 10)

    assert jobs.fair_candidates() == [quiet_old, quiet_new, other_job, busy_old]
    assert jobs.fair_candidates(limit=3) == [quiet_old, quiet_new, other_job]
    assert jobs.fair_candidates(limit=1) == [quiet_old]

"""A job's checkpoint (worker.heartbeat) reaches the database at most once a heartbeat interval.

Busy jobs check in between every draft, page or batch; the lease and locks renewed at the last
check still have most of a lease left, so the round trips in between are skipped. A lost lease
is still found at the next check that goes through (tests/test_jobs.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from connector import db, jobs, locks, worker
from connector.models import Job, JobState

CALLS: list[str] = []
STEPS: list[float] = []  # seconds the fake monotonic clock moves before each checkpoint


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@worker.handler("test_checkpoints")
def _checkpoints(job: Job, config: Mapping[str, Any]) -> None:
    for step in STEPS:
        CLOCK.now += step
        worker.heartbeat()


CLOCK = FakeMonotonic()


def test_checkpoints_within_a_heartbeat_interval_skip_the_database(
    app: Any, workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "JOB_LEASE_SECONDS", 3.0)  # a heartbeat every 1 s
    monkeypatch.setattr(worker.time, "monotonic", CLOCK)
    real_renew, real_extend = jobs.renew, locks.extend_held
    monkeypatch.setattr(
        jobs, "renew", lambda leases, lease: CALLS.append("renew") or real_renew(leases, lease)
    )
    monkeypatch.setattr(
        locks, "extend_held", lambda ttl: CALLS.append("extend") or real_extend(ttl)
    )
    CALLS.clear()
    # Checkpoints 0.25 s apart after the claim: the 4th (1 s after the claim) and the 8th (1 s
    # after that) go to the database; the others are within a second of the last one.
    STEPS[:] = [0.25] * 11
    with db.session_scope() as s:
        job = Job(
            workspace_id=workspace.id,
            kind="test_checkpoints",
            payload={},
            state=JobState.PENDING,
            max_attempts=3,
        )
        s.add(job)
        s.flush()
        job_id = job.id
    assert worker.run_job(job_id) == JobState.DONE
    assert CALLS == ["renew", "extend"] * 2
    assert getattr(worker._current, "checked_at", None) is None  # nothing leaks to the next job

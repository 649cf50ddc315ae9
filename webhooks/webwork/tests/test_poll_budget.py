"""A 429 pauses the connected user's whole budget (every workspace, every process) for its
Retry-After, through the shared limiter: nothing more is sent until it ends."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connector import db, ratelimit, ratelimit_db, worker
from connector.models import Job, JobState, utcnow
from tests.app_fixtures import TEST_REDIS_URL
from webhooks.webwork import connection as conn
from webhooks.webwork.client import Unavailable
from webhooks.webwork.poller import poll_workspace
from webhooks.webwork.polls import JOB_KIND
from webhooks.webwork.tests.fake import status

USER = "7429"  # a user of its own: its pause must not reach other tests' buckets


@pytest.fixture
def shared_limiter(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real limiter of this backend (database or Redis), as every process shares it, on a
    clock its waits advance (the pacing between requests costs no test time)."""
    clock = [time.time()]

    def advance(seconds: float) -> None:
        clock[0] += seconds

    kwargs = {"clock": lambda: clock[0], "sleep": advance}
    limiter = (
        ratelimit.RedisRateLimiter(TEST_REDIS_URL, **kwargs)
        if TEST_REDIS_URL
        else ratelimit_db.DatabaseRateLimiter(**kwargs)
    )
    monkeypatch.setattr(ratelimit, "shared_limiter", lambda: limiter)
    yield limiter
    if TEST_REDIS_URL:
        limiter._redis.delete(limiter._name(f"webwork:user-{USER}"))


def test_429_pauses_every_workspace_of_the_user(
    make_workspace: Any, webwork: Any, shared_limiter: Any
) -> None:
    first = make_workspace(tracker_workspace_id="4242")
    second = make_workspace(tracker_workspace_id="4242", name="Other", tracker_source="webwork2")
    conn.connect_with_token(first.id, "4242", webwork.add_token(USER), connected_by="t")
    conn.connect_with_token(second.id, "4242", webwork.add_token(USER, n=2), connected_by="t")
    webwork.fail_next(status(429, {"Retry-After": "600"}))
    with pytest.raises(Unavailable) as refused:
        poll_workspace(first.id)
    assert refused.value.retry_after == 600
    sent = len(webwork.calls)
    # The same user's other workspace sends nothing inside the Retry-After window.
    with pytest.raises(Unavailable) as paused:
        poll_workspace(second.id)
    assert len(webwork.calls) == sent
    assert 590 <= paused.value.retry_after <= 600
    # Its poll job is put off until the pause ends (not failed, not spending requests).
    with db.session_scope() as s:
        job = s.scalars(
            select(Job).where(
                Job.kind == JOB_KIND, Job.state == JobState.PENDING, Job.workspace_id == second.id
            )
        ).one()
        job.next_attempt_at = utcnow() - timedelta(seconds=1)
        job_id = job.id
    assert worker.run_job(job_id) == JobState.DONE
    assert len(webwork.calls) == sent
    with db.new_session() as s:
        nxt = s.scalars(
            select(Job).where(
                Job.kind == JOB_KIND, Job.state == JobState.PENDING, Job.workspace_id == second.id
            )
        ).one()
    assert nxt.next_attempt_at >= utcnow() + timedelta(seconds=580)
    assert "throttling" in conn.store_for(second.id).meta()["last_error"]

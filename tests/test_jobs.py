"""The job outbox: claims, leases kept alive by a heartbeat, crash recovery, backoff, max attempts.

Time is a fake clock (no sleeping): "a worker dies" is a worker that stops renewing its lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector import db, jobs, locks, worker
from connector.jobs import JobSettings
from connector.models import Job, JobState
from connector.providers.base import Rejected, RetryLater, Throttled


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(jobs, "utcnow", fake)
    monkeypatch.setattr(locks, "utcnow", fake)
    return fake


# The README's promises: a lease of 20 s (JOB_LEASE_SECONDS), a poll every second.
LEASE = 20.0
POLL = 1.0
RUNS: list[tuple[int, str]] = []
BEHAVIOUR: dict[str, Any] = {}


@worker.handler("test_job")
def _test_job(job: Job, config: Mapping[str, Any]) -> None:
    RUNS.append((job.id, str(job.payload.get("name", ""))))
    outcome = BEHAVIOUR.get(str(job.payload.get("name", "")))
    if outcome is not None:
        raise outcome


@pytest.fixture(autouse=True)
def _fresh_handler_state() -> None:
    RUNS.clear()
    BEHAVIOUR.clear()


def _add_job(clock: FakeClock, workspace_id: int, name: str = "", **values: Any) -> int:
    with db.session_scope() as s:
        job = Job(
            workspace_id=workspace_id,
            kind="test_job",
            payload={"name": name},
            state=JobState.PENDING,
            max_attempts=values.pop("max_attempts", 15),
            next_attempt_at=clock.now,
            created_at=clock.now,
            **values,
        )
        s.add(job)
        s.flush()
        return job.id


def _job(job_id: int) -> Job:
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
        return job


# --- crash recovery (issue #9 item 8) ----------------------------------------------------------
def test_a_job_orphaned_by_a_killed_worker_resumes_within_one_lease_plus_a_poll(
    app, workspace, clock
):
    """README, Crash recovery: a SIGKILLed worker's job is taken over by another worker at most
    one lease (JOB_LEASE_SECONDS, 20 s) plus JOB_POLL_SECONDS after its last heartbeat."""
    assert (worker.settings().lease_seconds, worker.settings().poll_seconds) == (LEASE, POLL)
    job_id = _add_job(clock, workspace.id)
    token = jobs.claim(job_id, LEASE)
    assert token is not None
    clock.advance(LEASE / 3)
    assert jobs.renew({job_id: token}, LEASE) == set()  # its last heartbeat...
    # ...then SIGKILL: the worker renews nothing any more. Up to a whole lease it is still its
    # job (a slow worker would renew in time): nobody takes it, no poll finds it.
    clock.advance(LEASE)
    assert jobs.claim_next(LEASE) is None
    assert worker.sweep() == 0
    # The next poll of any live worker after the lease ran out hands it on, and it finishes.
    clock.advance(POLL)
    assert worker.sweep() == 1  # immediate mode: the sweep runs what it finds inline
    job = _job(job_id)
    assert (job.state, job.attempts) == (JobState.DONE, 2)
    assert [name for _, name in RUNS] == [""]


def test_a_slow_but_alive_job_is_never_claimed_by_another_worker(app, workspace, clock):
    """The heartbeat renews the lease and the timesheet lock for as long as the worker lives."""
    job_id = _add_job(clock, workspace.id)
    token = jobs.claim(job_id, LEASE)
    assert token is not None
    with locks.advisory_lock("timesheet:1:ts_slow", ttl=LEASE, keepalive=True):
        worker._running[job_id] = token  # what run_claimed registers for the heartbeat thread
        try:
            for _ in range(60):  # ten minutes of a job stuck in a slow provider call
                clock.advance(LEASE / 3)
                assert worker.renew_leases(LEASE) == set()
                assert jobs.claim_next(LEASE) is None
                assert jobs.claim(job_id, LEASE) is None
                assert not locks.try_acquire("timesheet:1:ts_slow", "another-worker", 30)
        finally:
            worker._running.pop(job_id, None)
        assert jobs.finish_done(job_id, token)
    assert _job(job_id).attempts == 1


def test_a_timesheet_lock_of_a_killed_worker_frees_itself_within_a_lease(app, clock):
    # Held by a process that was SIGKILLed: its heartbeat no longer renews it; ours does not.
    assert locks.try_acquire("timesheet:1:ts_dead", "dead-worker", 30)
    with locks.advisory_lock("timesheet:1:ts_other", ttl=30, keepalive=True):
        clock.advance(20)
        assert worker.renew_leases(LEASE) == set()
        clock.advance(9)
        assert not locks.try_acquire("timesheet:1:ts_dead", "next-worker", 30)
        clock.advance(2)
        assert locks.try_acquire("timesheet:1:ts_dead", "next-worker", 30)
        assert not locks.try_acquire("timesheet:1:ts_other", "next-worker", 30)


def test_a_worker_that_lost_its_lease_stops_and_cannot_overwrite_the_new_run(app, workspace, clock):
    job_id = _add_job(clock, workspace.id)
    old = jobs.claim(job_id, LEASE)
    assert old is not None
    clock.advance(LEASE + 1)  # its heartbeats could not reach the database
    new = jobs.claim(job_id, LEASE)
    assert new is not None and new != old
    worker._current.job_id, worker._current.token = job_id, old
    try:
        with pytest.raises(worker.LeaseLost):
            worker.heartbeat()  # the checkpoint between two provider calls
    finally:
        worker._current.job_id = worker._current.token = None
    assert not jobs.finish_done(job_id, old)
    assert _job(job_id).state == JobState.RUNNING
    assert jobs.finish_done(job_id, new)
    assert _job(job_id).state == JobState.DONE


# --- claim, backoff, max attempts, sweep (issue #10 item 2) ------------------------------------
def test_claim_is_a_compare_and_set(app, workspace, clock):
    job_id = _add_job(clock, workspace.id)
    assert jobs.claim(job_id, LEASE) is not None
    assert jobs.claim(job_id, LEASE) is None
    later = _add_job(clock, workspace.id)
    with db.session_scope() as s:
        s.get(Job, later).next_attempt_at = clock.now + timedelta(seconds=5)
    assert jobs.claim(later, LEASE) is None  # not due yet
    clock.advance(5)
    assert jobs.claim(later, LEASE) is not None


def test_backoff_doubles_with_jitter_up_to_the_cap():
    settings = JobSettings(retry_base_seconds=10, retry_max_seconds=3600)
    for attempts, full in [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (30, 3600)]:
        delays = [settings.backoff_seconds(attempts) for _ in range(50)]
        assert all(full * 0.5 <= d <= full for d in delays), (attempts, min(delays), max(delays))


def test_backoff_jitter_spreads_retries_over_the_upper_half():
    """Jobs that failed together must not retry together: the delays cover 50-100% of the
    step, not one value."""
    settings = JobSettings(retry_base_seconds=10, retry_max_seconds=3600)
    delays = sorted(settings.backoff_seconds(4) for _ in range(400))  # full step: 80 s
    assert 40 <= delays[0] < 44 and 76 < delays[-1] <= 80
    assert len({round(d, 3) for d in delays}) > 350
    quarters = [sum(40 + 10 * q <= d < 50 + 10 * q for d in delays) for q in range(4)]
    assert all(60 <= n <= 140 for n in quarters), quarters  # about 100 each: uniform


def test_throttled_jobs_resume_spread_over_a_second_after_the_pause(app, workspace, clock):
    BEHAVIOUR["paused"] = Throttled("Stripe is throttling this account", retry_after=30)
    due = []
    for _ in range(12):
        job_id = _add_job(clock, workspace.id, "paused")
        assert worker.run_job(job_id) == JobState.PENDING
        due.append((_job(job_id).next_attempt_at - clock.now).total_seconds())
    assert all(30 <= d <= 31 for d in due), due
    assert len({round(d, 3) for d in due}) > 6  # not all at the same instant


def test_a_transient_error_is_retried_with_backoff_until_max_attempts(
    app, workspace, clock, monkeypatch
):
    monkeypatch.setitem(app.config, "JOB_RETRY_BASE_SECONDS", 10)
    BEHAVIOUR["flaky"] = RetryLater("503 from the provider")
    job_id = _add_job(clock, workspace.id, "flaky", max_attempts=3)
    assert worker.run_job(job_id) == JobState.PENDING
    job = _job(job_id)
    assert job.attempts == 1 and job.last_error == "503 from the provider"
    assert (
        clock.now + timedelta(seconds=5) <= job.next_attempt_at <= clock.now + timedelta(seconds=10)
    )
    assert worker.run_job(job_id) == "not-claimed"  # not due yet
    clock.advance(10)
    assert worker.run_job(job_id) == JobState.PENDING
    clock.advance(20)
    assert worker.run_job(job_id) == JobState.FAILED
    job = _job(job_id)
    assert (job.state, job.attempts) == (JobState.FAILED, 3)
    assert job.finished_at is not None


def test_a_rejected_job_fails_at_once_with_the_providers_words(app, workspace, clock):
    BEHAVIOUR["bad"] = Rejected("Invalid customer reference", code="2500")
    job_id = _add_job(clock, workspace.id, "bad")
    assert worker.run_job(job_id) == JobState.FAILED
    assert _job(job_id).last_error == "Invalid customer reference (code 2500)"


def test_a_crashed_job_keeps_its_traceback(app, workspace, clock):
    BEHAVIOUR["boom"] = ZeroDivisionError("division by zero")
    job_id = _add_job(clock, workspace.id, "boom", max_attempts=1)
    assert worker.run_job(job_id) == JobState.FAILED
    error = _job(job_id).last_error or ""
    assert error.startswith("division by zero")
    assert "Traceback (most recent call last)" in error
    assert "_test_job" in error  # the frame that raised
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobs", "failed"]).output
    assert "division by zero" in listed and "Traceback" not in listed  # one line per job
    full = runner.invoke(args=["jobs", "failed", "--traceback"]).output
    assert "Traceback (most recent call last)" in full and "_test_job" in full


def test_a_throttled_job_waits_for_the_pause_without_spending_an_attempt(app, workspace, clock):
    BEHAVIOUR["paused"] = Throttled("QuickBooks is throttling this company", retry_after=60)
    job_id = _add_job(clock, workspace.id, "paused", max_attempts=2)
    for _ in range(5):  # more pauses than the job has attempts
        assert worker.run_job(job_id) == JobState.PENDING
        job = _job(job_id)
        assert job.attempts == 0
        assert (
            clock.now + timedelta(seconds=60)
            <= job.next_attempt_at
            <= clock.now + timedelta(seconds=61)
        )
        assert jobs.claim_next(LEASE) is None  # nobody spends attempts on it during the pause
        clock.advance(61)
    BEHAVIOUR.clear()
    assert worker.run_job(job_id) == JobState.DONE


def test_the_poller_finds_due_retries_and_orphans(app, workspace, clock):
    due = _add_job(clock, workspace.id, "due")
    orphan = _add_job(clock, workspace.id, "orphan")
    assert jobs.claim(orphan, LEASE) is not None  # its worker dies
    later = _add_job(clock, workspace.id, "later")
    with db.session_scope() as s:
        s.get(Job, later).next_attempt_at = clock.now + timedelta(hours=1)
    assert worker.sweep() == 1  # immediate mode: the sweep runs what it finds inline
    clock.advance(LEASE + 1)
    assert worker.sweep() == 1
    assert [name for _, name in RUNS] == ["due", "orphan"]
    assert _job(due).state == _job(orphan).state == JobState.DONE
    assert _job(later).state == JobState.PENDING

"""When Clockify is polled: one pending poll job per connected workspace (scheduled on connect
and after each poll, cancelled on disconnect). Apart from the poller so that connecting can
schedule without importing the poller."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from connector import db, worker
from connector.models import Job, JobState, utcnow
from webhooks.clockify.store import store_for

JOB_KIND = "clockify_poll"
DEFAULT_POLL_SECONDS = 900.0


def poll_seconds(config: Any = None) -> float:
    value = (current_app.config if config is None else config).get("CLOCKIFY_POLL_SECONDS")
    return DEFAULT_POLL_SECONDS if value in (None, "") else float(value)


def schedule_poll(
    workspace_id: int, *, delay_seconds: float | None = None, run_now: bool = False
) -> int | None:
    """Make sure ONE poll job is pending, due after ``delay_seconds`` (default
    ``CLOCKIFY_POLL_SECONDS``; ``0`` there disables the periodic poll)."""
    if delay_seconds is None:
        delay_seconds = poll_seconds()
        if delay_seconds <= 0:
            return None
    due = utcnow() + timedelta(seconds=max(0.0, delay_seconds))
    with db.session_scope() as s:
        pending = list(
            s.scalars(
                select(Job)
                .where(
                    Job.workspace_id == workspace_id,
                    Job.kind == JOB_KIND,
                    Job.state == JobState.PENDING,
                )
                .order_by(Job.next_attempt_at)
            )
        )
        if pending:
            job = pending[0]
            for extra in pending[1:]:  # two schedulers raced: keep one
                extra.state = JobState.DONE
                extra.last_error = "merged with another scheduled poll"
                extra.finished_at = utcnow()
            if due < job.next_attempt_at:
                job.next_attempt_at = due
                job.enqueued_at = None
        else:
            job = worker.new_job(workspace_id, JOB_KIND)
            job.next_attempt_at = due
            s.add(job)
            s.flush()
        job_id, next_at = job.id, job.next_attempt_at
    store_for(workspace_id).update_meta(next_poll_at=next_at.isoformat())
    if run_now:
        worker.job_committed(job_id)
    return job_id


def cancel_polls(workspace_id: int) -> None:
    with db.session_scope() as s:
        s.execute(
            update(Job)
            .where(
                Job.workspace_id == workspace_id,
                Job.kind == JOB_KIND,
                Job.state.in_([JobState.PENDING, JobState.WAITING]),
            )
            .values(state=JobState.DONE, last_error="Clockify disconnected", finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )

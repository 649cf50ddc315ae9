"""When WebWork is polled: one pending poll job per connected workspace (scheduled on
connect, after each poll, and cancelled on disconnect). Apart from the poller so that the
connection module can schedule without importing the poller that reads connections."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from connector import db, worker
from connector.models import Job, JobState, utcnow
from webhooks.webwork.store import store_for

__all__ = ["JOB_KIND", "cancel_polls", "schedule_poll"]

JOB_KIND = "webwork_poll"


def _config(name: str, default: Any) -> Any:
    value = current_app.config.get(name)
    return default if value is None or value == "" else value


def _pending_polls(s: Any, workspace_id: int) -> list[Job]:
    return list(
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


def schedule_poll(
    workspace_id: int, *, delay_seconds: float | None = None, run_now: bool = False
) -> int | None:
    """Make sure ONE poll job is pending for the workspace, due after ``delay_seconds``
    (default ``WEBWORK_POLL_SECONDS``; ``0`` disables periodic polling). ``run_now`` nudges it."""
    if delay_seconds is None:
        delay_seconds = float(_config("WEBWORK_POLL_SECONDS", 300))
        if delay_seconds <= 0:
            return None
    due = utcnow() + timedelta(seconds=max(0.0, delay_seconds))
    with db.session_scope() as s:
        pending = _pending_polls(s, workspace_id)
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
        job_id = job.id
        next_at = job.next_attempt_at
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
            .values(state=JobState.DONE, last_error="WebWork disconnected", finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    store_for(workspace_id).update_meta(next_poll_at=None)

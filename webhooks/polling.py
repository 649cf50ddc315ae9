"""The poll machinery every tracker source shares (its :class:`~connector.trackers.Poller`).

One pending poll job per connected workspace and source (scheduled on connect, after each poll,
cancelled on disconnect); the job runs the source's poll, records the outcome in plain words on
the connection, holds a connection the tracker refused (re-checking it on a slow schedule until
it is accepted again or reconnected) and schedules the next poll. No outcome ends polling: a
crash is logged and shown, and the next poll is scheduled anyway.

Requests themselves are spaced by the shared limiter (``connector.ratelimit.shared_limiter``),
which each source's client uses with its tracker's limits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from connector import db, trackers, worker
from connector.connections.store import DbCredentialStore, secret_box
from connector.jobs import LeaseLost
from connector.models import Connection, ConnectionStatus, Job, JobState, utcnow

log = logging.getLogger(__name__)


def _poller(source: str) -> trackers.Poller:
    poller = trackers.get_source(source).poller
    if poller is None:
        raise trackers.UnknownSource(f"tracker source {source!r} has no poller")
    return poller


def store_for(source: str, workspace_id: int, config: Mapping[str, Any] | None = None) -> Any:
    """The workspace's connection to ``source`` in the shared credential store."""
    return DbCredentialStore(
        workspace_id, source, secret_box(current_app.config if config is None else config)
    )


def interval_seconds(source: str, config: Mapping[str, Any] | None = None) -> float:
    """Seconds between two polls (the source's setting; 0 disables periodic polling)."""
    poller = _poller(source)
    value = (current_app.config if config is None else config).get(poller.interval_setting)
    return poller.default_interval if value is None or value == "" else float(value)


def _pending_polls(s: Any, workspace_id: int, kind: str) -> list[Job]:
    return list(
        s.scalars(
            select(Job)
            .where(
                Job.workspace_id == workspace_id,
                Job.kind == kind,
                Job.state == JobState.PENDING,
            )
            .order_by(Job.next_attempt_at)
        )
    )


def schedule_poll(
    source: str, workspace_id: int, *, delay_seconds: float | None = None, run_now: bool = False
) -> int | None:
    """Make sure ONE poll job is pending for the workspace, due after ``delay_seconds``
    (default: the source's interval; ``0`` there disables periodic polling). ``run_now`` nudges
    it. An earlier due time wins over a later one."""
    kind = _poller(source).job_kind
    if delay_seconds is None:
        delay_seconds = interval_seconds(source)
        if delay_seconds <= 0:
            return None
    due = utcnow() + timedelta(seconds=max(0.0, delay_seconds))
    with db.session_scope() as s:
        pending = _pending_polls(s, workspace_id, kind)
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
            job = worker.new_job(workspace_id, kind)
            job.next_attempt_at = due
            s.add(job)
            s.flush()
        job_id = job.id
        next_at = job.next_attempt_at
    store_for(source, workspace_id).update_meta(next_poll_at=next_at.isoformat())
    if run_now:
        worker.job_committed(job_id)
    return job_id


def cancel_polls(source: str, workspace_id: int) -> None:
    """No poll of this workspace's ``source`` runs any more (disconnected)."""
    with db.session_scope() as s:
        s.execute(
            update(Job)
            .where(
                Job.workspace_id == workspace_id,
                Job.kind == _poller(source).job_kind,
                Job.state.in_([JobState.PENDING, JobState.WAITING]),
            )
            .values(
                state=JobState.DONE,
                last_error=f"{trackers.get_source(source).display_name} disconnected",
                finished_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
    store_for(source, workspace_id).update_meta(next_poll_at=None)


def hold(source: str, workspace_id: int, reason: str) -> None:
    """The tracker refused the connection (confirmed): stop polling, say so, re-check later."""
    store = store_for(source, workspace_id)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return  # removed: nothing to hold or re-check
    poller = _poller(source)
    now = utcnow()
    meta = dict(row.meta or {})
    if row.status != ConnectionStatus.RECONNECT_NEEDED or not meta.get("held_at"):
        log.warning(
            "%s polling of workspace %s stopped: %s Checking again every %d minutes; "
            "reconnecting resumes it at once.",
            trackers.get_source(source).display_name,
            workspace_id,
            reason,
            poller.recheck_seconds // 60,
        )
        store.update_meta(held_at=now.isoformat())
    store.mark_reconnect_needed(reason)
    store.update_meta(held_reason=reason, last_error=reason, last_check_at=now.isoformat())
    schedule_poll(source, workspace_id, delay_seconds=poller.recheck_seconds)


def resume(source: str, workspace_id: int) -> bool:
    """Held -> connected (only from held: a disconnect meanwhile wins); clears the hold's words."""
    with db.session_scope() as s:
        row = s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == source
            )
        ).one_or_none()
        if row is None or row.status != ConnectionStatus.RECONNECT_NEEDED:
            return False
        row.status = ConnectionStatus.CONNECTED
        row.last_error = None
    store = store_for(source, workspace_id)
    held_at = store.meta().get("held_at")
    store.update_meta(
        held_at=None,
        held_reason=None,
        last_error=None,
        last_check_error=None,
        resumed_at=utcnow().isoformat(),
    )
    log.warning(
        "%s polling of workspace %s resumed: the tracker accepts the connection again "
        "(held since %s)",
        trackers.get_source(source).display_name,
        workspace_id,
        held_at,
    )
    wake(source, workspace_id)
    return True


def wake(source: str, workspace_id: int) -> int:
    """Wake the jobs that waited for this connection (the poller's ``wakes``)."""
    return sum(worker.resume_waiting(workspace_id, why) for why in _poller(source).wakes)


def poll_now(source: str, workspace_id: int, config: Mapping[str, Any], refresh: bool) -> str:
    """One poll in this process (``flask tracker poll``): the report, or PollBusy/PollProblem."""
    return _poller(source).poll(workspace_id, config, refresh)


def poll_job_for(source: str) -> Callable[[Job, Mapping[str, Any]], None]:
    """The worker's handler of ``source``'s poll jobs."""

    def poll_job(job: Job, config: Mapping[str, Any]) -> None:
        workspace_id = job.workspace_id
        store = store_for(source, workspace_id, config)
        row = store.connection()
        if row is None or row.status == ConnectionStatus.DISCONNECTED:
            return  # removed: nothing to poll, nothing to wait for
        try:
            _poll_or_recheck(source, workspace_id, row.status, config)
        except LeaseLost:
            raise
        except Exception as exc:
            # A bug must not end polling: it is logged, shown, and the next poll is scheduled.
            log.exception("%s poll of workspace %s crashed", source, workspace_id)
            store.update_meta(last_error=f"The poll failed unexpectedly ({type(exc).__name__}).")
            schedule_poll(source, workspace_id)

    return poll_job


def _poll_or_recheck(source: str, workspace_id: int, status: str, config: Any) -> None:
    poller = _poller(source)
    store = store_for(source, workspace_id, config)
    if status == ConnectionStatus.RECONNECT_NEEDED and not (
        poller.recheck is not None and poller.recheck(workspace_id)
    ):
        schedule_poll(source, workspace_id, delay_seconds=poller.recheck_seconds)
        return
    delay: float | None = None
    try:
        poller.poll(workspace_id, config, False)
    except trackers.PollBusy:
        pass
    except trackers.PollProblem as exc:
        if exc.refused:
            hold(source, workspace_id, exc.message)
            return
        store.update_meta(last_error=exc.message)
        if exc.retry_after:
            delay = max(interval_seconds(source, config), exc.retry_after)
    else:
        wake(source, workspace_id)  # webhook approvals that met a refusal go on now
    row = store.connection()
    if row is not None and row.status == ConnectionStatus.CONNECTED:
        schedule_poll(source, workspace_id, delay_seconds=delay)


def install(source: str) -> None:
    """Register the worker handler of ``source``'s poll jobs (the app factory, per source)."""
    poller = trackers.get_source(source).poller
    if poller is not None:
        worker.HANDLERS[poller.job_kind] = poll_job_for(source)

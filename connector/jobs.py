"""The job outbox: creating, claiming, leasing, finishing and rescheduling job rows.

The ``jobs`` table is the truth; the queue (huey, see :mod:`connector.worker`) only wakes workers.

Leases are short (``JOB_LEASE_SECONDS``, 20 s by default) and kept alive by a heartbeat thread in
the worker process that owns them (:func:`renew`, every third of a lease). A worker that is
SIGKILLed stops renewing, so its job is claimable again within one lease; a worker that is slow
but alive keeps renewing, so nobody else claims its job. Every claim gets its own lease token: a
worker that lost its lease (the database was unreachable for longer than a lease) can neither
renew nor finish the job any more, and learns it at its next checkpoint (:class:`LeaseLost`).

Claims are fair between workspaces (:func:`claim_next`): the next free worker takes the oldest
due job of the workspace served least in the last minute, so one workspace's backlog of thousands
does not delay another workspace's single approval by more than the jobs already running.
"""

from __future__ import annotations

import os
import random
import socket
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update

from connector import db
from connector.models import Job, JobState, utcnow


# --- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobSettings:
    """The job outbox's settings, read from the app's one configuration when needed (never kept
    in a copy here): the worker passes them to the functions below."""

    lease_seconds: float = 20.0
    max_attempts: int = 15
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 3600.0
    poll_seconds: float = 1.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> JobSettings:
        return cls(
            lease_seconds=float(config["JOB_LEASE_SECONDS"]),
            max_attempts=int(config["JOB_MAX_ATTEMPTS"]),
            retry_base_seconds=float(config["JOB_RETRY_BASE_SECONDS"]),
            retry_max_seconds=float(config["JOB_RETRY_MAX_SECONDS"]),
            poll_seconds=float(config["JOB_POLL_SECONDS"]),
        )

    @property
    def heartbeat_seconds(self) -> float:
        """How often a live worker renews its leases: three chances before one runs out."""
        return max(0.1, self.lease_seconds / 3)

    def backoff_seconds(self, attempts: int) -> float:
        """Exponential backoff with full jitter: base * 2^(n-1), capped, randomised 50-100%."""
        full = min(self.retry_max_seconds, self.retry_base_seconds * (2 ** max(0, attempts - 1)))
        return full * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto


class LeaseLost(Exception):
    """This worker no longer owns the job (its lease ran out and another worker may run it)."""


# --- creating ------------------------------------------------------------------------------------
def new_job(
    workspace_id: int,
    kind: str,
    delivery_id: int | None = None,
    *,
    max_attempts: int,
    **payload: Any,
) -> Job:
    """A pending job row, due now; the caller adds it in its own transaction (most call
    ``worker.new_job``, which fills ``max_attempts`` from the configuration)."""
    return Job(
        workspace_id=workspace_id,
        delivery_id=delivery_id,
        kind=kind,
        payload=payload,
        state=JobState.PENDING,
        max_attempts=max_attempts,
        next_attempt_at=utcnow(),
    )


# --- claiming ------------------------------------------------------------------------------------
def _claimable(now: datetime) -> ColumnElement[bool]:
    """Due pending jobs, and running jobs whose worker stopped renewing the lease (it died)."""
    return or_(
        and_(Job.state == JobState.PENDING, Job.next_attempt_at <= now),
        and_(Job.state == JobState.RUNNING, Job.lease_expires_at < now),
    )


def new_token() -> str:
    """A lease token: unique per claim, and says which process holds the job (for operators)."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def claim(job_id: int, lease_seconds: float) -> str | None:
    """Take this job if it is claimable (compare-and-set); returns the lease token, or None."""
    now = utcnow()
    token = new_token()
    with db.autocommit_session() as s:  # one compare-and-set statement
        result = s.execute(
            update(Job)
            .where(Job.id == job_id, _claimable(now))
            .values(
                state=JobState.RUNNING,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                lease_owner=token,
                attempts=Job.attempts + 1,
                claimed_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return token if result.rowcount == 1 else None


# Fair share looks back this far: a workspace's jobs claimed in the window count against it.
FAIRNESS_WINDOW_SECONDS = 60.0


def fair_candidates(limit: int = 8) -> list[int]:
    """Claimable job ids, fairest first.

    Workspaces go in order of how many of their jobs were claimed in the last minute (fewest
    first; then the one whose oldest claimable job is oldest), and each workspace's jobs oldest
    first. A workspace whose backlog of 5,000 kept the workers busy has hundreds of recent claims;
    another workspace's single approval has none and goes to the next free worker.
    """
    now = utcnow()
    recent = (
        select(Job.workspace_id, func.count().label("served"))
        .where(Job.claimed_at >= now - timedelta(seconds=FAIRNESS_WINDOW_SECONDS))
        .group_by(Job.workspace_id)
        .subquery()
    )
    # Every claimable job with its rank in its workspace and its workspace's oldest due time:
    # one query (a round trip per job claimed), fairest workspace first, oldest job first.
    claimable = (
        select(
            Job.id,
            Job.workspace_id,
            func.row_number()
            .over(partition_by=Job.workspace_id, order_by=(Job.next_attempt_at, Job.id))
            .label("rank"),
            func.min(Job.next_attempt_at).over(partition_by=Job.workspace_id).label("oldest"),
        )
        .where(_claimable(now))
        .subquery()
    )
    order = (
        select(claimable.c.id)
        .outerjoin(recent, recent.c.workspace_id == claimable.c.workspace_id)
        .where(claimable.c.rank <= limit)
        .order_by(
            func.coalesce(recent.c.served, 0),
            claimable.c.oldest,
            claimable.c.workspace_id,
            claimable.c.rank,
        )
        .limit(limit)
    )
    with db.autocommit_session() as s:
        return list(s.scalars(order))


def claim_next(lease_seconds: float) -> tuple[int, str] | None:
    """Claim the fairest claimable job; returns (job id, lease token), or None when none is due."""
    for _round in range(3):  # other workers may win the same candidates: look again
        candidates = fair_candidates()
        if not candidates:
            return None
        for job_id in candidates:
            token = claim(job_id, lease_seconds)
            if token is not None:
                return job_id, token
    return None


def claimable_count(limit: int = 1000) -> int:
    """How many jobs a worker could claim now (capped: the poller only needs a rough figure)."""
    now = utcnow()
    with db.autocommit_session() as s:
        ids = select(Job.id).where(_claimable(now)).limit(limit).subquery()
        return int(s.scalar(select(func.count()).select_from(ids)) or 0)


# --- leases --------------------------------------------------------------------------------------
def renew(leases: Mapping[int, str], lease_seconds: float) -> set[int]:
    """Extend the leases of jobs this process runs; returns the ids whose lease was lost."""
    if not leases:
        return set()
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    lost = set()
    with db.session_scope() as s:
        for job_id, token in leases.items():
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.RUNNING, Job.lease_owner == token)
                .values(lease_expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                lost.add(job_id)
    return lost


def _settle(job_id: int, token: str, **values: Any) -> bool:
    """Write the outcome of a run, only if this run still owns the job (fenced by its token)."""
    with db.autocommit_session() as s:  # one fenced statement
        result = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.RUNNING, Job.lease_owner == token)
            .values(updated_at=utcnow(), lease_expires_at=None, lease_owner=None, **values)
            .execution_options(synchronize_session=False)
        )
    return result.rowcount == 1


def finish_done(job_id: int, token: str) -> bool:
    return _settle(
        job_id,
        token,
        state=JobState.DONE,
        last_error=None,
        wait_reason=None,
        finished_at=utcnow(),
    )


def finish_waiting(job_id: int, token: str, reason: str, message: str) -> bool:
    return _settle(job_id, token, state=JobState.WAITING, wait_reason=reason, last_error=message)


def finish_failed(job_id: int, token: str, message: str) -> bool:
    return _settle(job_id, token, state=JobState.FAILED, last_error=message, finished_at=utcnow())


def reschedule(
    job_id: int, token: str, delay: float, message: str, *, refund_attempt: bool = False
) -> bool:
    """Back to pending, due in ``delay`` seconds. ``refund_attempt``: the run was not the job's
    fault (the provider paused the account), so it does not count against ``max_attempts``."""
    due = utcnow() + timedelta(seconds=max(0.0, delay))
    values: dict[str, Any] = {
        "state": JobState.PENDING,
        "last_error": message,
        "next_attempt_at": due,
        "enqueued_at": due,
    }
    if refund_attempt:
        values["attempts"] = case((Job.attempts > 0, Job.attempts - 1), else_=0)
    return _settle(job_id, token, **values)


def error_with_traceback(exc: BaseException) -> str:
    """A crash's message followed by its traceback, kept on the failed job for whoever fixes it."""
    message = str(exc) or type(exc).__name__
    return f"{message}\n\n{''.join(traceback.format_exception(exc)).rstrip()}"


# --- waking --------------------------------------------------------------------------------------
def wake_waiting(workspace_id: int, reason: str) -> list[int]:
    """Make jobs parked on ``reason`` due now; returns their ids."""
    with db.session_scope() as s:
        ids = list(
            s.scalars(
                update(Job)
                .where(
                    Job.workspace_id == workspace_id,
                    Job.state == JobState.WAITING,
                    Job.wait_reason == reason,
                )
                .values(state=JobState.PENDING, wait_reason=None, next_attempt_at=utcnow())
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
        )
    return ids


def reset_for_retry(job_id: int) -> bool:
    """An admin's retry: a failed, waiting or pending job becomes due now with fresh attempts."""
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        if job is None or job.state not in (JobState.FAILED, JobState.WAITING, JobState.PENDING):
            return False
        job.state = JobState.PENDING
        job.attempts = 0
        job.wait_reason = None
        job.next_attempt_at = utcnow()
        job.finished_at = None
    return True

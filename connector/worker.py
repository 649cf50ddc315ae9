"""The worker: huey carries nudges, the ``jobs`` table is the truth.

huey never acknowledges a message, so a task a killed worker was running is gone from the
queue. Every job therefore lives in the database with a lease: a worker claims it with a
compare-and-set, extends the lease while it makes progress (``heartbeat``), and finishes it with
another write. A poller thread in every consumer process nudges jobs that are due or whose lease
expired, so a killed worker loses nothing; the claim, the per-timesheet lock and the
idempotency keys make sure nothing runs twice to completion.

Start it with ``huey_consumer connector.worker.huey -g TERM`` (see Procfile).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from flask import has_app_context
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from sqlalchemy import or_, select, update

from connector import db, locks, observability
from connector.config import load_config
from connector.models import Job, JobState, utcnow
from connector.providers.base import ReconnectNeeded, Rejected, RetryLater

log = logging.getLogger(__name__)


class WaitFor(Exception):
    """Park the job until a human fixes something (reconnect, tracker data); not a failure."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def make_huey(config: Mapping[str, Any]) -> Huey:
    url = str(config["QUEUE_URL"])
    immediate = bool(config.get("WORKER_IMMEDIATE"))
    name = "timesheet-invoicer"
    if url.startswith("redis"):
        return RedisHuey(name, url=url, immediate=immediate)
    if url.startswith("memory"):
        return MemoryHuey(name, immediate=immediate)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return SqliteHuey(name, filename=path, immediate=immediate)
    raise ValueError(f"QUEUE_URL {urlparse(url).scheme!r} is not supported (sqlite, redis, memory)")


# The consumer imports this module and reads ``huey``; it is built from the environment.
_boot_config = load_config()
huey: Huey = make_huey(_boot_config)
_huey_key = (str(_boot_config["QUEUE_URL"]), bool(_boot_config.get("WORKER_IMMEDIATE")))
_config: dict[str, Any] = {}
_app: Any = None


def configure(config: Mapping[str, Any]) -> None:
    """Called by create_app: point the (module-level) huey at the configured queue."""
    global _config, _huey_key
    _config = dict(config)
    key = (str(config["QUEUE_URL"]), bool(config.get("WORKER_IMMEDIATE")))
    if key == _huey_key:
        return  # the consumer's own huey: never swap storage under running loops
    wanted = make_huey(config)
    # Tasks are bound to this Huey object, so swap its storage rather than the object.
    huey._immediate = wanted.immediate
    huey.storage = wanted.storage
    _huey_key = key


def ping_queue() -> None:
    """Raise if the queue backend cannot be reached."""
    huey.storage.queue_size()


def _ensure_app() -> Any:
    """The consumer needs the same configured app (database, providers) as the web process."""
    global _app
    if _app is None:
        from connector import create_app

        _app = create_app()
    return _app


# --- the job lifecycle ---------------------------------------------------------------------------
HANDLERS: dict[str, Callable[[Job], None]] = {}


def handler(kind: str) -> Callable[[Callable[[Job], None]], Callable[[Job], None]]:
    def register(fn: Callable[[Job], None]) -> Callable[[Job], None]:
        HANDLERS[kind] = fn
        return fn

    return register


def _setting(name: str, default: Any) -> Any:
    return _config.get(name, default)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter: base * 2^(n-1), capped, randomised 50-100%."""
    base = float(_setting("JOB_RETRY_BASE_SECONDS", 10))
    cap = float(_setting("JOB_RETRY_MAX_SECONDS", 3600))
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto


def lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(job_id: int) -> bool:
    """Take the job if it is due, or if its previous worker's lease expired. Compare-and-set."""
    now = utcnow()
    lease = timedelta(seconds=int(_setting("JOB_LEASE_SECONDS", 300)))
    with db.session_scope() as s:
        result = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(
                    (Job.state == JobState.PENDING) & (Job.next_attempt_at <= now),
                    (Job.state == JobState.RUNNING) & (Job.lease_expires_at < now),
                ),
            )
            .values(
                state=JobState.RUNNING,
                lease_expires_at=now + lease,
                lease_owner=lease_owner(),
                attempts=Job.attempts + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def _finish(job_id: int, **values: Any) -> None:
    with db.session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(updated_at=utcnow(), lease_expires_at=None, lease_owner=None, **values)
            .execution_options(synchronize_session=False)
        )


_current = threading.local()


def heartbeat() -> None:
    """Extend the running job's lease: long jobs call this after each step of progress."""
    job_id = getattr(_current, "job_id", None)
    if job_id is None:
        return
    lease = timedelta(seconds=int(_setting("JOB_LEASE_SECONDS", 300)))
    with db.session_scope() as s:
        s.execute(
            update(Job)
            .where(
                Job.id == job_id, Job.state == JobState.RUNNING, Job.lease_owner == lease_owner()
            )
            .values(lease_expires_at=utcnow() + lease)
            .execution_options(synchronize_session=False)
        )
    locks.extend_held(lease.total_seconds())


def _mark_delivery_failed(job: Job, message: str) -> None:
    if job.delivery_id is None:
        return
    from connector.models import Delivery, DeliveryStatus

    with db.session_scope() as s:
        delivery = s.get(Delivery, job.delivery_id)
        if delivery is not None:
            delivery.status = DeliveryStatus.FAILED
            delivery.error = message
    observability.DELIVERIES.labels("failed").inc()


def run_job(job_id: int) -> str:
    """Run one job to an outcome; returns the resulting state (for tests and logs)."""
    if not claim(job_id):
        return "not-claimed"
    _current.job_id = job_id
    try:
        return _run_claimed(job_id)
    finally:
        _current.job_id = None


def _run_claimed(job_id: int) -> str:
    with db.new_session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
    started = time.monotonic()
    state = "crashed"
    try:
        with observability.log_context(
            job_id=job.id, workspace_id=job.workspace_id, delivery_id=job.delivery_id
        ):
            state = _run_handler(job)
        return state
    finally:
        observability.JOB_DURATION.labels(job.kind).observe(time.monotonic() - started)
        observability.JOB_RUNS.labels(job.kind, str(state)).inc()


def _run_handler(job: Job) -> str:
    job_id = job.id
    fn = HANDLERS.get(job.kind)
    try:
        if fn is None:
            raise Rejected(f"no handler for job kind {job.kind!r}")
        fn(job)
    except WaitFor as wait:
        _finish(job_id, state=JobState.WAITING, wait_reason=wait.reason, last_error=wait.message)
        return JobState.WAITING
    except ReconnectNeeded as exc:
        _finish(job_id, state=JobState.WAITING, wait_reason="reconnect_needed", last_error=str(exc))
        return JobState.WAITING
    except Exception as exc:
        permanent = isinstance(exc, Rejected)
        if not isinstance(exc, RetryLater | Rejected):
            log.exception("job %s (%s) crashed", job_id, job.kind)
        message = str(exc) or type(exc).__name__
        if permanent or job.attempts >= job.max_attempts:
            _finish(job_id, state=JobState.FAILED, last_error=message, finished_at=utcnow())
            _mark_delivery_failed(job, message)
            return JobState.FAILED
        delay = backoff_seconds(job.attempts)
        if isinstance(exc, RetryLater) and exc.retry_after:
            delay = max(delay, float(exc.retry_after))
        due = utcnow() + timedelta(seconds=delay)
        scheduled = not huey.immediate
        _finish(
            job_id,
            state=JobState.PENDING,
            last_error=message,
            next_attempt_at=due,
            enqueued_at=due if scheduled else None,
        )
        if scheduled:
            process_job.schedule((job_id,), delay=delay)
        return JobState.PENDING
    _finish(job_id, state=JobState.DONE, last_error=None, wait_reason=None, finished_at=utcnow())
    return JobState.DONE


def enqueue(job_id: int) -> None:
    """Nudge a worker about a committed job (the poller covers a lost nudge)."""
    try:
        process_job(job_id)
    except Exception:
        # The queue being down must not lose the job: it is committed, the poller finds it.
        log.exception("could not enqueue job %s; the poller will pick it up", job_id)


def resume_waiting(workspace_id: int, reason: str) -> int:
    """Wake jobs parked on ``reason`` (e.g. after an admin reconnected); returns how many."""
    with db.session_scope() as s:
        ids = list(
            s.scalars(
                select(Job.id).where(
                    Job.workspace_id == workspace_id,
                    Job.state == JobState.WAITING,
                    Job.wait_reason == reason,
                )
            )
        )
        if ids:
            s.execute(
                update(Job)
                .where(Job.id.in_(ids))
                .values(state=JobState.PENDING, wait_reason=None, next_attempt_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    for job_id in ids:
        enqueue(job_id)
    return len(ids)


def retry_job(job_id: int) -> bool:
    """An admin's retry: a failed or waiting job runs again with fresh attempts."""
    with db.session_scope() as s:
        job = s.get(Job, job_id)
        if job is None or job.state not in (JobState.FAILED, JobState.WAITING, JobState.PENDING):
            return False
        job.state = JobState.PENDING
        job.attempts = 0
        job.wait_reason = None
        job.next_attempt_at = utcnow()
        job.finished_at = None
    enqueue(job_id)
    return True


def sweep(limit: int = 500) -> int:
    """Nudge due pending jobs and jobs whose worker died (lease expired); returns how many.

    The nudge is recorded in ``enqueued_at`` by the same UPDATE that picks the jobs, so two
    pollers never nudge one job twice and a backlog is not re-queued on every poll.
    """
    now = utcnow()
    lease = timedelta(seconds=int(_setting("JOB_LEASE_SECONDS", 300)))
    due = or_(
        (Job.state == JobState.PENDING) & (Job.next_attempt_at <= now),
        (Job.state == JobState.RUNNING) & (Job.lease_expires_at < now),
    )
    not_nudged = or_(Job.enqueued_at.is_(None), Job.enqueued_at < now - lease)
    with db.session_scope() as s:
        candidates = (
            select(Job.id).where(due, not_nudged).order_by(Job.next_attempt_at).limit(limit)
        ).scalar_subquery()
        ids = list(
            s.scalars(
                update(Job)
                .where(Job.id.in_(candidates), due, not_nudged)
                .values(enqueued_at=now)
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
        )
    for job_id in ids:
        enqueue(job_id)
    if ids:
        log.info("poller enqueued %d job(s)", len(ids))
    return len(ids)


def job_committed(job_id: int) -> None:
    """A web request committed a new job row.

    In immediate mode (tests, development without a worker) the job runs now. Otherwise
    nothing is sent from the request path: every worker process polls the jobs table each
    JOB_POLL_SECONDS, which keeps the queue out of the acknowledgement's latency, and a queue
    outage can neither lose nor strand a committed job.
    """
    if huey.immediate:
        enqueue(job_id)


_poller_lock = threading.Lock()
_poller_thread: threading.Thread | None = None


def _poll_forever(interval: float) -> None:
    app = _ensure_app()
    while True:
        try:
            with app.app_context():
                sweep()
        except Exception:
            log.exception("job poller failed; trying again")
        time.sleep(interval)


def start_poller() -> None:
    """One poller thread per consumer process (started by huey's on_startup hook)."""
    global _poller_thread
    with _poller_lock:
        if _poller_thread is not None and _poller_thread.is_alive():
            return
        interval = float(load_config().get("JOB_POLL_SECONDS", 1))
        _poller_thread = threading.Thread(
            target=_poll_forever, args=(interval,), name="job-poller", daemon=True
        )
        _poller_thread.start()


# --- huey tasks: ids only (huey pickles its messages) ------------------------------------------
@huey.task(name="process_job")
def process_job(job_id: int) -> str:
    if has_app_context():  # inline (immediate mode) inside a web request
        return run_job(job_id)
    with _ensure_app().app_context():
        return run_job(job_id)


@huey.on_startup()
def _start_poller_in_consumer() -> None:
    start_poller()


def _load_handlers() -> None:
    # The pipeline registers its handlers on import.
    import connector.pipeline  # noqa: F401


_load_handlers()

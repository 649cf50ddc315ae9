"""The worker: huey carries nudges, the ``jobs`` table is the truth (:mod:`connector.jobs`).

huey never acknowledges a message, so a task a killed worker was running is gone from the
queue. Every job therefore lives in the database with a short lease: a worker claims it with a
compare-and-set, a heartbeat thread renews the leases (and the per-timesheet locks) of the jobs
this process runs for as long as the process lives, and the run ends with a write fenced by the
lease token. A poller thread in every consumer process puts "run the next job" nudges on the
queue while jobs are due or orphaned; each nudge claims the fairest due job
(:func:`jobs.claim_next`), so queue order never decides who goes first. A killed worker loses
nothing and its job resumes within one lease; the claim, the per-timesheet lock and the
idempotency keys make sure nothing runs twice at once or twice to completion.

Start it with ``huey_consumer connector.worker.huey -g TERM`` (see Procfile).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from flask import current_app, has_app_context
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

from connector import db, jobs, locks, observability
from connector.config import check_production, load_config
from connector.jobs import LeaseLost, backoff_seconds
from connector.models import Delivery, DeliveryStatus, Job, JobState
from connector.providers.base import ReconnectNeeded, Rejected, RetryLater, Throttled

__all__ = ["LeaseLost", "WaitFor", "backoff_seconds", "enqueue", "handler", "heartbeat", "huey"]

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
# Refuse here, at import, not later in the app the poller builds: huey_consumer then exits
# non-zero ("Error importing connector.worker.huey"), so the platform sees a crashed worker
# instead of one idling forever with nothing processed.
check_production(_boot_config)
huey: Huey = make_huey(_boot_config)
_huey_key = (str(_boot_config["QUEUE_URL"]), bool(_boot_config.get("WORKER_IMMEDIATE")))
_config: dict[str, Any] = {}
_app: Any = None


def configure(config: Mapping[str, Any]) -> None:
    """Called by create_app: point the (module-level) huey at the configured queue."""
    global _config, _huey_key
    _config = dict(config)
    jobs.configure(config)
    key = (str(config["QUEUE_URL"]), bool(config.get("WORKER_IMMEDIATE")))
    if key == _huey_key:
        return  # the consumer's own huey: never swap storage under running loops
    wanted = make_huey(config)
    # Tasks are bound to this Huey object, so swap its storage rather than the object.
    huey._immediate = wanted.immediate
    huey.storage = wanted.storage
    _huey_key = key


def _app_config() -> Mapping[str, Any]:
    # Jobs run inside an app context (the consumer's app, or the web request's in immediate
    # mode): its configuration, which tests and operators may adjust after create_app.
    return current_app.config if has_app_context() else _config


def ping_queue() -> None:
    """Raise if the queue backend cannot be reached."""
    huey.storage.queue_size()


def ensure_app() -> Any:
    """The consumer needs the same configured app (database, providers) as the web process."""
    global _app
    if _app is None:
        # The consumer's own composition root: the app factory wires the handlers and sources.
        from connector import create_app

        _app = create_app()
    return _app


# --- the job lifecycle ---------------------------------------------------------------------------
# A handler gets the job and the configuration of the app it runs in, so the code it runs takes
# its settings as an argument instead of reading them from Flask.
Handler = Callable[[Job, Mapping[str, Any]], None]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


# Jobs this process is running: job id -> lease token (renewed by the heartbeat thread).
_running: dict[int, str] = {}
_running_guard = threading.Lock()
_current = threading.local()


def _leases() -> dict[int, str]:
    with _running_guard:
        return dict(_running)


def renew_leases() -> set[int]:
    """One heartbeat: renew this process's job leases and kept-alive locks; returns lost job ids.

    The locks are renewed even for a job whose lease was lost: while its thread still runs, the
    per-timesheet lock is what keeps a second run of the same timesheet from overlapping it.
    """
    leases = _leases()
    lost = jobs.renew(leases)
    locks.renew_kept_alive()
    running = _leases()
    # A job that settled since the snapshot is no longer running: not lost, just finished.
    lost = {job_id for job_id in lost if running.get(job_id) == leases[job_id]}
    for job_id in lost:
        log.warning("job %s: lease lost (another worker may run it); stopping soon", job_id)
    return lost


def heartbeat() -> None:
    """A checkpoint for long jobs, between steps: raise :class:`LeaseLost` if the job is no
    longer ours (a second run could be under way), else renew its lease and locks now."""
    job_id = getattr(_current, "job_id", None)
    token = getattr(_current, "token", None)
    if job_id is None or token is None:
        return
    # A job checks in between drafts, pages or batches: several times a second on a busy
    # worker. Within a heartbeat interval of its last check (or its claim) its lease, and every
    # lock it took or extended then (none has a shorter ttl than a lease), have at least two
    # thirds of a lease left, so nobody else can hold them yet: no round trip needed.
    checked_at = getattr(_current, "checked_at", None)
    if checked_at is not None and time.monotonic() - checked_at < jobs.heartbeat_seconds():
        return
    _current.checked_at = time.monotonic()
    if jobs.renew({job_id: token}):
        raise LeaseLost(f"job {job_id} is no longer leased to this worker")
    lost = locks.extend_held(jobs.lease_seconds())
    if lost:
        raise LeaseLost(f"job {job_id} lost its lock(s) {', '.join(lost)}")


def _heartbeat_forever() -> None:
    while True:
        time.sleep(jobs.heartbeat_seconds())
        try:
            renew_leases()  # the database only: no app context needed
        except Exception:
            log.exception("heartbeat failed; trying again")


_heartbeat_lock = threading.Lock()
_heartbeat_thread: threading.Thread | None = None


def start_heartbeat() -> None:
    """One heartbeat thread per consumer process (started by huey's on_startup hook)."""
    global _heartbeat_thread
    with _heartbeat_lock:
        if _heartbeat_thread is not None and _heartbeat_thread.is_alive():
            return
        _heartbeat_thread = threading.Thread(
            target=_heartbeat_forever, name="job-heartbeat", daemon=True
        )
        _heartbeat_thread.start()


def _mark_delivery_failed(job: Job, message: str) -> None:
    if job.delivery_id is None:
        return

    with db.session_scope() as s:
        delivery = s.get(Delivery, job.delivery_id)
        if delivery is not None:
            delivery.status = DeliveryStatus.FAILED
            delivery.error = message
    observability.DELIVERIES.labels("failed").inc()


def run_job(job_id: int) -> str:
    """Claim and run one job to an outcome; returns the resulting state (for tests and logs)."""
    token = jobs.claim(job_id)
    if token is None:
        return "not-claimed"
    return run_claimed(job_id, token)


def run_next() -> str:
    """Claim the fairest due job and run it; ``"idle"`` when there is none."""
    claimed = jobs.claim_next()
    if claimed is None:
        return "idle"
    return run_claimed(*claimed)


def run_claimed(job_id: int, token: str) -> str:
    """Run a job this worker holds the lease ``token`` of; the heartbeat keeps the lease alive."""
    with _running_guard:
        _running[job_id] = token
    _current.job_id, _current.token = job_id, token
    _current.checked_at = time.monotonic()  # claimed just now: a fresh lease
    try:
        return _run(job_id, token)
    finally:
        _current.job_id = _current.token = _current.checked_at = None
        with _running_guard:
            _running.pop(job_id, None)


def _run(job_id: int, token: str) -> str:
    with db.read_session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
    started = time.monotonic()
    state = "crashed"
    try:
        with observability.log_context(
            job_id=job.id, workspace_id=job.workspace_id, delivery_id=job.delivery_id
        ):
            state = _run_handler(job, token)
        return state
    finally:
        observability.JOB_DURATION.labels(job.kind).observe(time.monotonic() - started)
        observability.JOB_RUNS.labels(job.kind, str(state)).inc()


def _run_handler(job: Job, token: str) -> str:
    job_id = job.id
    fn = HANDLERS.get(job.kind)
    try:
        if fn is None:
            raise Rejected(f"no handler for job kind {job.kind!r}")
        fn(job, _app_config())
    except LeaseLost:
        log.warning("job %s: stopped, its lease went to another worker", job_id)
        return "lease-lost"
    except WaitFor as wait:
        jobs.finish_waiting(job_id, token, wait.reason, wait.message)
        return JobState.WAITING
    except ReconnectNeeded as exc:
        jobs.finish_waiting(job_id, token, "reconnect_needed", str(exc))
        return JobState.WAITING
    except Throttled as exc:
        # The provider paused this account for everyone: not the job's fault, no attempt spent.
        delay = float(exc.retry_after or 0) + random.uniform(0, 1)  # noqa: S311 - jitter
        jobs.reschedule(job_id, token, delay, str(exc), refund_attempt=True)
        return JobState.PENDING
    except Exception as exc:
        permanent = isinstance(exc, Rejected)
        if isinstance(exc, RetryLater | Rejected):
            message = str(exc) or type(exc).__name__
        else:
            log.exception("job %s (%s) crashed", job_id, job.kind)
            message = jobs.error_with_traceback(exc)
        if permanent or job.attempts >= job.max_attempts:
            if jobs.finish_failed(job_id, token, message):
                _mark_delivery_failed(job, str(exc) or type(exc).__name__)
            return JobState.FAILED
        delay = backoff_seconds(job.attempts)
        if isinstance(exc, RetryLater) and exc.retry_after:
            delay = max(delay, float(exc.retry_after))
        jobs.reschedule(job_id, token, delay, message)
        return JobState.PENDING
    jobs.finish_done(job_id, token)
    return JobState.DONE


def enqueue(job_id: int) -> None:
    """A job was committed or became due: run it inline (immediate mode) or wake a worker.

    The nudge names no job: the worker that takes it claims the fairest due job, so a burst of
    one workspace's jobs cannot queue up in front of another's. A lost nudge is covered by the
    poller.
    """
    try:
        if huey.immediate:
            process_job(job_id)
        else:
            process_next()
    except Exception:
        # The queue being down must not lose the job: it is committed, the poller finds it.
        log.exception("could not enqueue job %s; the poller will pick it up", job_id)


def resume_waiting(workspace_id: int, reason: str) -> int:
    """Wake jobs parked on ``reason`` (e.g. after an admin reconnected); returns how many."""
    ids = jobs.wake_waiting(workspace_id, reason)
    for job_id in ids:
        enqueue(job_id)
    return len(ids)


def retry_job(job_id: int) -> bool:
    """An admin's retry: a failed or waiting job runs again with fresh attempts."""
    if not jobs.reset_for_retry(job_id):
        return False
    enqueue(job_id)
    return True


# How many "run the next job" nudges the poller keeps on the queue while jobs are due: enough to
# keep every worker thread of a few consumers busy between two polls. The nudges name no job, so
# their number does not affect who goes first.
QUEUE_DEPTH = 32


def sweep() -> int:
    """Top the queue up with nudges while jobs are due or orphaned; returns how many were added.

    Runs in every consumer process each JOB_POLL_SECONDS. The jobs table, not the queue, is the
    truth: retries (due later) and jobs of SIGKILLed workers (lease no longer renewed) are found
    here.
    """
    if huey.immediate:
        return _sweep_inline()
    wanted = min(jobs.claimable_count(QUEUE_DEPTH), QUEUE_DEPTH) - huey.pending_count()
    for _ in range(max(0, wanted)):
        process_next()
    if wanted > 0:
        log.debug("poller queued %d nudge(s)", wanted)
    return max(0, wanted)


def _sweep_inline() -> int:
    ran = 0
    while run_next() != "idle":
        ran += 1
    return ran


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
    app = ensure_app()
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
    """Run this job (immediate mode, and nudges queued before fair claiming existed)."""
    if has_app_context():  # inline (immediate mode) inside a web request
        return run_job(job_id)
    with ensure_app().app_context():
        return run_job(job_id)


@huey.task(name="process_next")
def process_next() -> str:
    """A nudge: claim the fairest due job and run it."""
    if has_app_context():
        return run_next()
    with ensure_app().app_context():
        return run_next()


@huey.on_startup()
def _start_poller_in_consumer() -> None:
    ensure_app()  # the database the heartbeat renews leases in
    start_heartbeat()
    start_poller()

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

Nothing happens at import: the app factory (``create_app``) builds a :class:`Runtime` with
:func:`install` (huey from the app's configuration, the tasks bound to it) and keeps it in
``app.extensions["worker"]``. Jobs read the configuration of the app they run in, never a copy.
The consumer process starts in its own composition root, ``connector/consumer.py``
(``huey_consumer connector.consumer.huey -g TERM``, see Procfile).
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

from connector import db, jobs, locks, observability
from connector.jobs import JobSettings, LeaseLost
from connector.models import Delivery, DeliveryStatus, Job, JobState
from connector.providers.base import ReconnectNeeded, Rejected, RetryLater, Throttled

__all__ = [
    "LeaseLost",
    "Runtime",
    "WaitFor",
    "handler",
    "heartbeat",
    "install",
    "job_committed",
    "new_job",
    "periodic",
]

log = logging.getLogger(__name__)


class WaitFor(Exception):
    """Park the job until a human fixes something (reconnect, tracker data); not a failure."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def make_huey(config: Mapping[str, Any]) -> Huey:
    """The queue named by ``QUEUE_URL`` (``WORKER_IMMEDIATE``: tasks run inline)."""
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


# --- the runtime: one per app, built by the app factory ------------------------------------------
@dataclass
class Runtime:
    """One app's queue and the huey tasks bound to it; ``config`` is the app's own (not a copy).

    ``app_context``, given by the app factory, enters the app's context unless one is active
    (a web request running a job inline): the worker itself never imports Flask.
    """

    app: Any  # the app whose configuration jobs read
    huey: Huey
    app_context: Callable[[], AbstractContextManager[Any]]
    tasks: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Mapping[str, Any]:
        return self.app.config  # type: ignore[no-any-return]

    @property
    def settings(self) -> JobSettings:
        return JobSettings.from_config(self.app.config)

    @contextmanager
    def context(self) -> Iterator[None]:
        """Run as this app: its context, and its runtime for :func:`current`."""
        token = _active.set(self)
        try:
            with self.app_context():
                yield
        finally:
            _active.reset(token)

    def activate(self) -> contextvars.Token[Runtime | None]:
        """This runtime serves the current request, until :meth:`deactivate` (the app factory
        calls both around every request)."""
        return _active.set(self)

    @staticmethod
    def deactivate(token: contextvars.Token[Runtime | None]) -> None:
        _active.reset(token)


# Periodic tasks declared by the packages the app factory loads (``@worker.periodic``), bound to
# each runtime's huey when it is built: fn(config).
PERIODIC: list[tuple[Any, str, Callable[[Mapping[str, Any]], None]]] = []
_installed: Runtime | None = None
_active: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "tsi_worker_runtime", default=None
)


def periodic(
    schedule: Any, name: str
) -> Callable[[Callable[[Mapping[str, Any]], None]], Callable[[Mapping[str, Any]], None]]:
    """Declare a periodic task (a huey ``crontab``); it gets the configuration of its app."""

    def register(fn: Callable[[Mapping[str, Any]], None]) -> Callable[[Mapping[str, Any]], None]:
        PERIODIC[:] = [entry for entry in PERIODIC if entry[1] != name] + [(schedule, name, fn)]
        return fn

    return register


def install(app: Any, app_context: Callable[[], AbstractContextManager[Any]]) -> Runtime:
    """Build the app's queue and tasks (called by ``create_app``); the newest is the process's."""
    global _installed
    runtime = Runtime(app=app, huey=make_huey(app.config), app_context=app_context)
    huey = runtime.huey

    @huey.task(name="process_job")
    def process_job(job_id: int) -> str:
        """Run this job (immediate mode)."""
        with runtime.context():
            return run_job(job_id)

    @huey.task(name="process_next")
    def process_next() -> str:
        """A nudge: claim the fairest due job and run it."""
        with runtime.context():
            return run_next()

    for schedule, name, fn in PERIODIC:
        huey.periodic_task(schedule, name=name)(_periodic_in(runtime, fn))

    @huey.on_startup()
    def _start_threads_in_consumer() -> None:
        start_heartbeat(runtime)
        start_poller(runtime)

    runtime.tasks = {"process_job": process_job, "process_next": process_next}
    app.extensions["worker"] = runtime
    _installed = runtime
    return runtime


def _periodic_in(runtime: Runtime, fn: Callable[[Mapping[str, Any]], None]) -> Callable[[], None]:
    def run() -> None:
        with runtime.context():
            fn(runtime.config)

    run.__name__ = fn.__name__
    return run


def current() -> Runtime:
    """The runtime of the app this code runs in (else the one the process built last)."""
    runtime = _active.get()
    if runtime is not None:
        return runtime
    if _installed is None:
        raise RuntimeError("The worker is not set up: create_app() builds it.")
    return _installed


def settings() -> JobSettings:
    """The job settings of the current app's configuration."""
    return current().settings


def new_job(workspace_id: int, kind: str, delivery_id: int | None = None, **payload: Any) -> Job:
    """A pending job row, due now, with the configured attempts; the caller adds it."""
    return jobs.new_job(
        workspace_id, kind, delivery_id, max_attempts=settings().max_attempts, **payload
    )


def ping_queue() -> None:
    """Raise if the queue backend cannot be reached."""
    current().huey.storage.queue_size()


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


def renew_leases(lease_seconds: float) -> set[int]:
    """One heartbeat: renew this process's job leases and kept-alive locks; returns lost job ids.

    The locks are renewed even for a job whose lease was lost: while its thread still runs, the
    per-timesheet lock is what keeps a second run of the same timesheet from overlapping it.
    """
    leases = _leases()
    lost = jobs.renew(leases, lease_seconds)
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
    # worker. Within a heartbeat interval of its last check (or its claim), its lease and the
    # locks it took or extended then still have at least two thirds of a lease left, so nobody
    # else can hold them yet: no round trip needed.
    job_settings = settings()
    checked_at = getattr(_current, "checked_at", None)
    if checked_at is not None and time.monotonic() - checked_at < job_settings.heartbeat_seconds:
        return
    _current.checked_at = time.monotonic()
    lease = job_settings.lease_seconds
    if jobs.renew({job_id: token}, lease):
        raise LeaseLost(f"job {job_id} is no longer leased to this worker")
    lost = locks.extend_held(lease)
    if lost:
        raise LeaseLost(f"job {job_id} lost its lock(s) {', '.join(lost)}")


def _heartbeat_forever(runtime: Runtime) -> None:
    while True:
        job_settings = runtime.settings
        time.sleep(job_settings.heartbeat_seconds)
        try:
            renew_leases(job_settings.lease_seconds)  # the database only: no app context needed
        except Exception:
            log.exception("heartbeat failed; trying again")


_heartbeat_lock = threading.Lock()
_heartbeat_thread: threading.Thread | None = None


def start_heartbeat(runtime: Runtime | None = None) -> None:
    """One heartbeat thread per process (the consumer's on_startup hook; a long CLI command).
    ``runtime``: the app's whose lease length it uses (default: the current app's)."""
    global _heartbeat_thread
    runtime = current() if runtime is None else runtime
    with _heartbeat_lock:
        if _heartbeat_thread is not None and _heartbeat_thread.is_alive():
            return
        _heartbeat_thread = threading.Thread(
            target=_heartbeat_forever, args=(runtime,), name="job-heartbeat", daemon=True
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
    token = jobs.claim(job_id, settings().lease_seconds)
    if token is None:
        return "not-claimed"
    return run_claimed(job_id, token)


def run_next() -> str:
    """Claim the fairest due job and run it; ``"idle"`` when there is none."""
    claimed = jobs.claim_next(settings().lease_seconds)
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
    with db.autocommit_session() as s:
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
        fn(job, current().config)
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
        delay = settings().backoff_seconds(job.attempts)
        if isinstance(exc, RetryLater) and exc.retry_after:
            delay = max(delay, float(exc.retry_after))
        jobs.reschedule(job_id, token, delay, message)
        return JobState.PENDING
    jobs.finish_done(job_id, token)
    return JobState.DONE


def job_committed(job_id: int) -> None:
    """A job row was committed, or made due again: have it run.

    In immediate mode (tests, development without a worker) it runs now, inline. Otherwise
    nothing is sent from here: every worker process polls the jobs table each
    ``JOB_POLL_SECONDS`` and nudges the queue while jobs are due, which keeps the queue out of a
    request's latency, and a queue outage can neither lose nor strand a committed job.
    """
    runtime = current()
    if not runtime.huey.immediate:
        return
    try:
        runtime.tasks["process_job"](job_id)
    except Exception:
        # Inline runs record their own outcome; a crash here must not fail the caller's request.
        log.exception("job %s could not run inline; the next sweep picks it up", job_id)


def resume_waiting(workspace_id: int, reason: str) -> int:
    """Wake jobs parked on ``reason`` (e.g. after an admin reconnected); returns how many."""
    ids = jobs.wake_waiting(workspace_id, reason)
    for job_id in ids:
        job_committed(job_id)
    return len(ids)


def retry_job(job_id: int) -> bool:
    """An admin's retry: a failed or waiting job runs again with fresh attempts."""
    if not jobs.reset_for_retry(job_id):
        return False
    job_committed(job_id)
    return True


# How many "run the next job" nudges the poller keeps on the queue while jobs are due: enough to
# keep every worker thread of a few consumers busy between two polls. The nudges name no job, so
# their number does not affect who goes first.
QUEUE_DEPTH = 32


def sweep() -> int:
    """Top the queue up with nudges while jobs are due or orphaned; returns how many were added.

    Runs in every consumer process each JOB_POLL_SECONDS. The jobs table, not the queue, is the
    truth: new jobs, retries (due later) and jobs of SIGKILLed workers (lease no longer renewed)
    are found here.
    """
    runtime = current()
    if runtime.huey.immediate:
        return _sweep_inline()
    wanted = min(jobs.claimable_count(QUEUE_DEPTH), QUEUE_DEPTH) - runtime.huey.pending_count()
    for _ in range(max(0, wanted)):
        runtime.tasks["process_next"]()
    if wanted > 0:
        log.debug("poller queued %d nudge(s)", wanted)
    return max(0, wanted)


def _sweep_inline() -> int:
    ran = 0
    while run_next() != "idle":
        ran += 1
    return ran


_poller_lock = threading.Lock()
_poller_thread: threading.Thread | None = None


def _poll_forever(runtime: Runtime) -> None:
    while True:
        try:
            with runtime.context():
                sweep()
        except Exception:
            log.exception("job poller failed; trying again")
        time.sleep(runtime.settings.poll_seconds)


def start_poller(runtime: Runtime) -> None:
    """One poller thread per consumer process (started by huey's on_startup hook)."""
    global _poller_thread
    with _poller_lock:
        if _poller_thread is not None and _poller_thread.is_alive():
            return
        _poller_thread = threading.Thread(
            target=_poll_forever, args=(runtime,), name="job-poller", daemon=True
        )
        _poller_thread.start()

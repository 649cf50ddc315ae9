"""What operators see: Prometheus metrics and (optionally JSON) log lines with the ids of the work.

Metrics
    Counters and histograms counted where things happen (deliveries, job runs, provider calls,
    drafts) use ``prometheus-client``. With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory,
    the same for every gunicorn and worker process of one machine) each process writes its values
    to files there and a scrape of any process adds them all up. Without it each process counts
    alone (development, tests).

    Gauges about the work itself (jobs by state, the age of the oldest due job, holds by reason,
    connections by status) are read from the database at scrape time, so they are the same
    whichever process answers and need no multiprocess bookkeeping.

    ``GET /metrics`` on the web app answers only with ``Authorization: Bearer <METRICS_TOKEN>``
    (404 when no token is configured); ``flask --app connector metrics serve`` serves the same
    text without a token on an internal address (``METRICS_HOST``/``METRICS_PORT``).

Logs
    ``LOG_FORMAT=json`` writes one JSON object per line. Every line logged while a job or a
    delivery is handled carries ``workspace_id``, ``delivery_id``, ``job_id`` and
    ``timesheet_id`` (those known at that point) from :func:`log_context`; only those ids and the
    message are added, never configuration or credentials.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select

from connector import db, trackers
from connector.models import (
    HOLD_STATUSES,
    Connection,
    Draft,
    DraftStatus,
    Job,
    JobState,
    utcnow,
)

log = logging.getLogger(__name__)

# --- metrics counted where things happen ---------------------------------------------------------
DELIVERIES = Counter(
    "tsi_deliveries_total",
    "Inbound deliveries by outcome (accepted, duplicate, invalid, ignored, skipped, refused, "
    "processed, failed).",
    ["outcome"],
)
JOB_RUNS = Counter(
    "tsi_job_runs_total", "Job runs by kind and the state they ended in.", ["kind", "state"]
)
JOB_DURATION = Histogram(
    "tsi_job_duration_seconds",
    "Wall time of one job run, by kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PROVIDER_CALLS = Counter(
    "tsi_provider_calls_total",
    "Requests sent to an accounting provider, by provider and HTTP status ('error' when no "
    "answer came back).",
    ["provider", "status"],
)
PROVIDER_THROTTLED = Counter(
    "tsi_provider_throttled_total",
    "429 (too many requests) answers from an accounting provider.",
    ["provider"],
)
DRAFTS_CREATED = Counter(
    "tsi_drafts_created_total", "Drafts confirmed by the provider.", ["provider"]
)


def count_provider_call(provider: str, status: int | str | None) -> None:
    """One request answered ``status`` (None: no answer, e.g. a timeout)."""
    label = str(status) if status is not None else "error"
    PROVIDER_CALLS.labels(provider, label).inc()
    if label == "429":
        PROVIDER_THROTTLED.labels(provider).inc()


# --- gauges read from the database at scrape time ----------------------------------------------
class WorkCollector(Collector):
    """Jobs by state, the oldest due job's age, holds by reason, connections by status."""

    def collect(self) -> Iterator[GaugeMetricFamily]:

        now = utcnow()
        jobs = GaugeMetricFamily("tsi_jobs", "Jobs by state.", labels=["state"])
        oldest = GaugeMetricFamily(
            "tsi_oldest_due_job_age_seconds",
            "How long the oldest job that is due (pending and past its time, or running on an "
            "expired lease) has been waiting; 0 when none is. Alert when it keeps growing.",
        )
        holds = GaugeMetricFamily(
            "tsi_drafts_held", "Drafts waiting for a person, by reason.", labels=["reason"]
        )
        connections = GaugeMetricFamily(
            "tsi_connections",
            "Accounting connections by provider and status (reconnect_needed needs an admin).",
            labels=["provider", "status"],
        )
        tracker_connections = GaugeMetricFamily(
            "tsi_tracker_connections",
            "Time tracker connections by status (reconnect_needed: polling stopped, the token "
            "is re-checked on a slow schedule).",
            labels=["tracker", "status"],
        )
        try:
            with db.new_session() as s:
                by_state = dict(
                    s.execute(select(Job.state, func.count()).group_by(Job.state)).all()
                )
                due_since = s.execute(
                    select(
                        func.min(Job.next_attempt_at).filter(Job.state == JobState.PENDING),
                        func.min(Job.lease_expires_at).filter(Job.state == JobState.RUNNING),
                    ).where(
                        or_(
                            (Job.state == JobState.PENDING) & (Job.next_attempt_at <= now),
                            (Job.state == JobState.RUNNING) & (Job.lease_expires_at < now),
                        )
                    )
                ).one()
                held_statuses = [*HOLD_STATUSES, DraftStatus.RECONNECT_NEEDED, DraftStatus.FAILED]
                by_reason = dict(
                    s.execute(
                        select(Draft.status, func.count())
                        .where(Draft.status.in_(held_statuses))
                        .group_by(Draft.status)
                    ).all()
                )
                by_connection = s.execute(
                    select(Connection.provider, Connection.status, func.count()).group_by(
                        Connection.provider, Connection.status
                    )
                ).all()
        except Exception as exc:  # a scrape still answers (the counters) when the database is down
            log.warning("could not read job and draft gauges for /metrics: %s", exc)
            return
        for state in JobState:
            jobs.add_metric([state.value], by_state.get(state.value, 0))
        starts = [_aware(t) for t in due_since if t is not None]
        oldest.add_metric([], max(0.0, (now - min(starts)).total_seconds()) if starts else 0.0)
        for status in held_statuses:
            holds.add_metric([str(status)], by_reason.get(str(status), 0))
        for provider, status, count in by_connection:
            if provider in trackers.TRACKER_PROVIDERS:
                tracker_connections.add_metric([provider, status], count)
            else:
                connections.add_metric([provider, status], count)
        yield from (jobs, oldest, holds, connections, tracker_connections)


def _aware(value: Any) -> Any:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render_metrics() -> bytes:
    """The text exposition of every process's counters plus the database gauges."""
    work = CollectorRegistry(auto_describe=False)
    work.register(WorkCollector())
    if multiprocess_dir():
        counted = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    return generate_latest(counted) + generate_latest(work)


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    if not token:
        abort(404)  # not exposed on the public app: use `flask metrics serve` internally
    offered = request.headers.get("Authorization", "")
    if not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        return Response(
            "A bearer token is required.\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"},
        )
    return Response(render_metrics(), 200, {"Content-Type": CONTENT_TYPE_LATEST})


def serve(host: str, port: int) -> None:  # pragma: no cover - a blocking server for operators
    """Serve /metrics without a token on an internal address (the CLI's ``metrics serve``)."""
    from wsgiref.simple_server import make_server

    def app(environ: Mapping[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [render_metrics()]

    with make_server(host, port, app) as server:
        log.info("serving metrics on http://%s:%d/metrics", host, port)
        server.serve_forever()


# --- log lines carrying the ids of the work ----------------------------------------------------
CONTEXT_FIELDS = ("workspace_id", "delivery_id", "job_id", "timesheet_id")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "tsi_log_context", default=None
)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every log line inside the block carries these ids (only :data:`CONTEXT_FIELDS`)."""
    current = dict(_context.get() or {})
    current.update({k: v for k, v in ids.items() if k in CONTEXT_FIELDS and v is not None})
    token = _context.set(current)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            setattr(record, name, value)
        return True


_HANDLER_FLAG = "_tsi_handler"


def configure_logging(config: Mapping[str, Any]) -> None:
    """Text lines by default; ``LOG_FORMAT=json`` for one JSON object per line."""
    root = logging.getLogger()
    root.setLevel(str(config.get("LOG_LEVEL") or "INFO").upper())
    handler = next((h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)), None)
    if handler is None:
        if root.handlers:
            # Someone (gunicorn, pytest) set up logging already: only add the ids to its lines.
            for existing in root.handlers:
                if not any(isinstance(f, ContextFilter) for f in existing.filters):
                    existing.addFilter(ContextFilter())
            if str(config.get("LOG_FORMAT") or "text").lower() != "json":
                return
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _HANDLER_FLAG, True)
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    handler.setFormatter(make_formatter(str(config.get("LOG_FORMAT") or "text")))


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format.lower() == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")

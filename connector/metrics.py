"""The metrics scrape: ``GET /metrics`` on the web app, ``flask --app connector metrics serve``
on an internal address, and the gauges read from the database at scrape time.

Gauges about the work itself (jobs by state, the age of the oldest due job, holds by reason,
connections by status) are read from the database when scraped, so they are the same whichever
process answers and need no multiprocess bookkeeping. The counters are counted where things
happen (:mod:`connector.observability`); with ``PROMETHEUS_MULTIPROC_DIR`` every process's are
added up here.

``GET /metrics`` answers only with ``Authorization: Bearer <METRICS_TOKEN>`` (404 when no token is
configured); ``metrics serve`` serves the same text without a token (``METRICS_HOST``/
``METRICS_PORT``).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
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
    Invoice,
    Job,
    JobState,
    utcnow,
)

log = logging.getLogger(__name__)


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
        attention = GaugeMetricFamily(
            "tsi_invoices_needing_attention",
            "Invoices a person must look at (an approval withdrawn after finance sent it, or an "
            "invoice in books the workspace no longer bills to).",
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
                flagged = s.scalar(
                    select(func.count()).select_from(Invoice).where(Invoice.needs_attention)
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
        attention.add_metric([], flagged or 0)
        for provider, status, count in by_connection:
            if provider in trackers.TRACKER_PROVIDERS:
                tracker_connections.add_metric([provider, status], count)
            else:
                connections.add_metric([provider, status], count)
        yield from (jobs, oldest, holds, attention, connections, tracker_connections)


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

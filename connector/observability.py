"""What operators see: Prometheus metrics and (optionally JSON) log lines with the ids of the work.

Metrics
    Counters and histograms counted where things happen (deliveries, job runs, provider calls,
    drafts) use ``prometheus-client``. With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory,
    the same for every gunicorn and worker process of one machine) each process writes its values
    to files there and a scrape of any process adds them all up. Without it each process counts
    alone (development, tests).

    The scrape itself (``GET /metrics``, the gauges read from the database at scrape time) is
    :mod:`connector.metrics`: this module has no database and no Flask, so provider adapters
    and the pipeline count here without reaching either.

Logs
    ``LOG_FORMAT=json`` writes one JSON object per line. Every line logged while a job or a
    delivery is handled carries ``workspace_id``, ``delivery_id``, ``job_id`` and
    ``timesheet_id`` (those known at that point) from :func:`log_context`; only those ids and the
    message are added, never configuration or credentials.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Histogram

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


def drop_foreign_handlers(logger_name: str) -> None:
    """Let ``logger_name`` print through our root handler only, when we installed one.

    ``huey_consumer`` gives the "huey" logger a handler of its own after the worker's app (and
    so this module's handler) is built; the records also reach the root logger, so every huey
    line would be printed twice, once per format, and without our ids."""
    root = logging.getLogger()
    if not any(getattr(h, _HANDLER_FLAG, False) for h in root.handlers):
        return
    named = logging.getLogger(logger_name)
    for handler in list(named.handlers):
        if not getattr(handler, _HANDLER_FLAG, False):
            named.removeHandler(handler)


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format.lower() == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")

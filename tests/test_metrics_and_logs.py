"""Operators' view: /metrics (token-protected, counters move with the work, gauges from the
database) and JSON log lines carrying the ids of the work, never secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector import db, observability, worker
from connector.models import Connection, ConnectionStatus, Job, JobState, utcnow
from tests.helpers import event, map_clients_locally

APPROVED = "timesheet_approved__three_customers"
TOKEN = "metrics-test-token"


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    res = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert res.status_code == 200, res.data
    assert res.content_type.startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(res.get_data(as_text=True)):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_app(app: Any) -> Any:
    app.config["METRICS_TOKEN"] = TOKEN
    return app


def test_scrape_after_a_delivery_finds_the_counters_moved(
    metrics_app: Any, client: Any, workspace: Any, post_event: Any
):
    map_clients_locally(workspace.id)
    before = scrape(client)

    assert post_event(workspace, event(APPROVED)).status_code == 202

    after = scrape(client)
    for name, labels, moved_by in [
        ("tsi_deliveries_total", {"outcome": "accepted"}, 1),
        ("tsi_deliveries_total", {"outcome": "processed"}, 1),
        ("tsi_drafts_created_total", {"provider": "local"}, 3),
        ("tsi_job_runs_total", {"kind": "process_delivery", "state": "done"}, 1),
        ("tsi_job_duration_seconds_count", {"kind": "process_delivery"}, 1),
    ]:
        assert value(after, name, **labels) - value(before, name, **labels) == moved_by, name
    assert value(after, "tsi_jobs", state="done") == 1
    assert value(after, "tsi_oldest_due_job_age_seconds") == 0


def test_gauges_show_the_oldest_due_job_holds_and_reconnects(
    metrics_app: Any, client: Any, workspace: Any, post_event: Any
):
    post_event(workspace, event(APPROVED))  # nothing mapped: three drafts held
    with db.session_scope() as s:
        s.add(
            Job(
                workspace_id=workspace.id,
                kind="bill_timesheet",
                payload={},
                state=JobState.PENDING,
                next_attempt_at=utcnow() - timedelta(minutes=10),
            )
        )
        s.add(
            Connection(
                workspace_id=workspace.id,
                provider="quickbooks",
                status=ConnectionStatus.RECONNECT_NEEDED,
            )
        )

    metrics = scrape(client)

    assert 590 <= value(metrics, "tsi_oldest_due_job_age_seconds") <= 660
    assert value(metrics, "tsi_jobs", state="pending") == 1
    assert value(metrics, "tsi_drafts_held", reason="needs_mapping") >= 1
    assert value(metrics, "tsi_connections", provider="quickbooks", status="reconnect_needed") == 1


def test_provider_calls_and_429s_are_counted(metrics_app: Any, client: Any):
    before = scrape(client)
    observability.count_provider_call("quickbooks", 200)
    observability.count_provider_call("quickbooks", 429)
    observability.count_provider_call("stripe", None)
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("tsi_provider_calls_total", provider="quickbooks", status="200") == 1
    assert moved("tsi_provider_calls_total", provider="quickbooks", status="429") == 1
    assert moved("tsi_provider_calls_total", provider="stripe", status="error") == 1
    assert moved("tsi_provider_throttled_total", provider="quickbooks") == 1


def test_an_anonymous_scrape_is_refused_when_a_token_is_set(metrics_app: Any, client: Any):
    res = client.get("/metrics")
    assert res.status_code == 401
    assert res.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"tsi_" not in res.data
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401


def test_without_a_token_the_public_app_does_not_expose_metrics(app: Any, client: Any):
    app.config["METRICS_TOKEN"] = None
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_the_cli_prints_the_same_metrics(app: Any):
    result = app.test_cli_runner().invoke(args=["metrics", "show"])
    assert result.exit_code == 0, result.output
    assert "tsi_jobs{" in result.output
    assert "tsi_deliveries_total" in result.output


# --- logs ---------------------------------------------------------------------------------------
@pytest.fixture
def json_lines() -> Any:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.make_formatter("json"))
    handler.addFilter(observability.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_json_log_lines_of_a_job_carry_its_ids_and_no_secrets(
    app: Any, workspace: Any, post_event: Any, json_lines: Any
):
    seen: list[int] = []

    @worker.handler("test_log_line")
    def log_something(job: Job, config: Mapping[str, Any]) -> None:
        seen.append(job.id)
        with observability.log_context(timesheet_id="ts_1"):
            logging.getLogger("connector.test").warning("billing timesheet")

    try:
        with db.session_scope() as s:
            job = Job(workspace_id=workspace.id, kind="test_log_line", payload={})
            s.add(job)
            s.flush()
            job_id = job.id
        assert worker.run_job(job_id) == JobState.DONE
    finally:
        worker.HANDLERS.pop("test_log_line")

    (line,) = [x for x in json_lines() if x["message"] == "billing timesheet"]
    assert line["level"] == "WARNING"
    assert line["logger"] == "connector.test"
    assert line["job_id"] == job_id
    assert line["workspace_id"] == workspace.id
    assert line["timesheet_id"] == "ts_1"
    assert "time" in line
    text = json.dumps(json_lines())
    for secret in (workspace.signing_secret, workspace.api_token, app.config["SECRET_KEY"]):
        assert secret not in text
    # Outside the job the ids are gone again.
    logging.getLogger("connector.test").warning("idle")
    (idle,) = [x for x in json_lines() if x["message"] == "idle"]
    assert "job_id" not in idle and "workspace_id" not in idle


def test_log_format_json_installs_a_json_handler(database_url: str):
    from connector import create_app
    from tests.app_fixtures import app_overrides

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        create_app({**app_overrides(database_url), "LOG_FORMAT": "json"})
        (ours,) = [h for h in root.handlers if getattr(h, "_tsi_handler", False)]
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
        assert json.loads(ours.format(record))["message"] == "hello you"
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)


def test_every_process_counts_in_multiprocess_mode(tmp_path: Any):
    """Two processes (say a gunicorn worker and a worker) count; a third one's scrape adds up."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(root)}
    count = (
        "from connector import observability as o; "
        "o.DELIVERIES.labels('accepted').inc(); o.count_provider_call('quickbooks', 429)"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, cwd=root)
    scrape_once = (
        "import sys; from connector import metrics as o; "
        "sys.stdout.write(o.render_metrics().decode())"
    )
    text = subprocess.run(
        [sys.executable, "-c", scrape_once],
        env=env,
        check=True,
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("tsi_deliveries_total", (("outcome", "accepted"),))] == 2
    assert samples[("tsi_provider_throttled_total", (("provider", "quickbooks"),))] == 2


def test_the_worker_prints_each_line_once_after_huey_adds_its_handler(database_url: str):
    """huey_consumer gives the "huey" logger a handler of its own after importing the worker's
    app: the consumer's startup hook drops it, so a line is not printed twice in two formats."""
    from connector import create_app, observability
    from tests.app_fixtures import app_overrides

    root, huey_logger = logging.getLogger(), logging.getLogger("huey")
    before, huey_before = list(root.handlers), list(huey_logger.handlers)
    try:
        for handler in before:
            root.removeHandler(handler)
        create_app(app_overrides(database_url))  # the worker's import: no handler yet -> ours
        hueys = logging.StreamHandler()  # what huey_consumer's setup_logger adds
        huey_logger.addHandler(hueys)
        observability.drop_foreign_handlers("huey")
        assert hueys not in huey_logger.handlers
        assert [getattr(h, "_tsi_handler", False) for h in root.handlers] == [True]
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)
        huey_logger.handlers[:] = huey_before

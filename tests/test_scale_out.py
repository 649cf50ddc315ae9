"""Scale-out: two worker processes (each with two threads) against one database and one queue
share a burst of approvals; every job is done exactly once and every draft made exactly once."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector import create_app, db
from connector.models import Draft, Job, LocalInvoice
from tests.app_fixtures import TEST_REDIS_URL, app_overrides, signed_headers
from tests.helpers import event, map_clients_locally

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
APPROVALS = 24


def _start_consumer(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "tests.worker_harness_scale.huey",
            "-w",
            "2",
            "-k",
            "thread",
            "-m",
            "0.5",
            "-g",
            "TERM",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_two_worker_processes_do_every_job_exactly_once(app, database_url, workspace, tmp_path):
    queue_url = TEST_REDIS_URL or f"sqlite:///{tmp_path / 'queue.db'}"
    if queue_url.startswith("redis"):
        import redis

        redis.Redis.from_url(queue_url).flushdb()
    web = create_app(
        {**app_overrides(database_url), "QUEUE_URL": queue_url, "WORKER_IMMEDIATE": False}
    )
    map_clients_locally(workspace.id)
    base = event("timesheet_approved__three_customers")
    client = web.test_client()
    for i in range(APPROVALS):
        doc = copy.deepcopy(base)
        doc["data"]["timesheet"]["id"] = f"ts_scale_{i:03d}"
        body = json.dumps(doc).encode()
        res = client.post(
            workspace.webhook_path,
            data=body,
            headers=signed_headers(workspace.signing_secret, body),
        )
        assert res.status_code == 202

    run_log = tmp_path / "made.log"
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "QUEUE_URL": queue_url,
        "WORKER_IMMEDIATE": "false",
        "JOB_RETRY_BASE_SECONDS": "1",
        "PUBLIC_BASE_URL": "http://invoicer.test",
        "SCALE_TEST_LOG": str(run_log),
        # The periodic status reconcile would add a job of its own when the run crosses a
        # five-minute mark: this test counts the approvals' jobs only.
        "STATUS_RECONCILE_MINUTES": "0",
        "PYTHONPATH": str(ROOT),
    }
    if TEST_REDIS_URL:
        env["REDIS_URL"] = TEST_REDIS_URL  # the shared rate limiter, as in production
    else:
        env.pop("REDIS_URL", None)
    consumer_log = tmp_path / "consumers.log"
    consumers = [_start_consumer(env, consumer_log) for _ in range(2)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with db.session_scope() as s:
                states = Counter(s.scalars(select(Job.state)))
            if set(states) == {"done"}:
                break
            assert all(c.poll() is None for c in consumers), consumer_log.read_text()[-3000:]
            time.sleep(0.3)
        else:
            raise AssertionError(f"jobs not done in time: {dict(states)}")
    finally:
        for consumer in consumers:
            os.killpg(consumer.pid, signal.SIGTERM)
        for consumer in consumers:
            try:
                consumer.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(consumer.pid, signal.SIGKILL)

    with db.session_scope() as s:
        # The approvals' jobs: a consumer's periodic status-reconcile may add one of its own when
        # the run crosses a five-minute mark.
        jobs = list(s.scalars(select(Job).where(Job.kind == "process_delivery")))
        invoices = s.scalar(select(func.count()).select_from(LocalInvoice))
        invoice_keys = Counter(s.scalars(select(LocalInvoice.key)))
        drafts = Counter(s.scalars(select(Draft.status)))
    assert len(jobs) == APPROVALS
    # Each job claimed and run once: a second claim by the other process would count an attempt.
    assert [j.attempts for j in jobs] == [1] * APPROVALS, consumer_log.read_text()[-3000:]
    assert invoices == 3 * APPROVALS and set(invoice_keys.values()) == {1}
    assert drafts == {"drafted": 3 * APPROVALS}
    made = [line.split() for line in run_log.read_text().splitlines()]
    assert Counter(key for _, key in made) == invoice_keys  # no create ran twice anywhere
    # Both processes took part: the burst outlasts one consumer's threads (a provider round trip
    # per draft), so the second one must have claimed some of it.
    per_process = Counter(pid for pid, _ in made)
    assert len(per_process) == 2, f"drafts per worker process: {dict(per_process)}"
    assert min(per_process.values()) >= 3, f"drafts per worker process: {dict(per_process)}"

"""A real huey consumer is SIGKILLed mid-job and restarted: the job completes exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector import create_app, db
from connector.models import Draft, Job, LocalInvoice
from tests.app_fixtures import TEST_REDIS_URL, app_overrides, signed_headers
from tests.helpers import event, map_clients_locally

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _queue_url(tmp_path: Path) -> str:
    if TEST_REDIS_URL:
        return TEST_REDIS_URL
    return f"sqlite:///{tmp_path / 'queue.db'}"


def _start_consumer(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "tests.worker_harness.huey",
            "-w",
            "2",
            "-k",
            "thread",
            "-g",
            "TERM",
            "-s",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# Every wait of the test shares one budget, well under pytest's 120 s timeout: a stuck step fails
# with its own words instead of being killed by pytest-timeout. (Typical run: 10-20 s.)
BUDGET_SECONDS = 75.0


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, at_most: float) -> float:
        return max(0.0, min(at_most, self.deadline - time.monotonic()))

    def wait_for(self, predicate, at_most: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + self.left(at_most)
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(100)
def test_sigkill_mid_job_then_restart_completes_exactly_once(
    app, database_url, workspace, tmp_path
):
    budget = Budget(BUDGET_SECONDS)
    queue_url = _queue_url(tmp_path)
    if queue_url.startswith("redis"):
        import redis

        redis.Redis.from_url(queue_url).flushdb()
    # The web side enqueues into the real queue (not inline) for this test.
    real = create_app(
        {
            **app_overrides(database_url),
            "QUEUE_URL": queue_url,
            "WORKER_IMMEDIATE": False,
            "JOB_LEASE_SECONDS": 3,
        }
    )
    map_clients_locally(workspace.id)
    body = json.dumps(event("timesheet_approved__three_customers")).encode()
    res = real.test_client().post(
        workspace.webhook_path, data=body, headers=signed_headers(workspace.signing_secret, body)
    )
    assert res.status_code == 202

    marker = tmp_path / "hung"
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "QUEUE_URL": queue_url,
        "WORKER_IMMEDIATE": "false",
        "JOB_LEASE_SECONDS": "3",
        "JOB_RETRY_BASE_SECONDS": "1",
        "PUBLIC_BASE_URL": "http://invoicer.test",
        "CRASH_TEST_MARKER": str(marker),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    log = tmp_path / "consumer.log"
    first = _start_consumer(env, log)
    try:
        budget.wait_for(marker.exists, 30, "the worker to reach the provider")
        os.killpg(first.pid, signal.SIGKILL)  # no cleanup, no goodbye
        first.wait(5)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)

    # The provider committed one invoice; the connector never recorded it.
    with db.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(LocalInvoice)) == 1
        assert s.scalars(select(Job)).one().state == "running"

    # Restart once the dead worker's lease has run out: the sweeper runs at consumer start.
    def lease_expired() -> bool:
        with db.session_scope() as s:
            job = s.scalars(select(Job)).one()
            return job.lease_expires_at < datetime.now(UTC)

    budget.wait_for(lease_expired, 10, "the dead worker's lease (3 s) to expire")
    second = _start_consumer(env, log)
    try:

        def done() -> bool:
            with db.session_scope() as s:
                return s.scalars(select(Job)).one().state == "done"

        budget.wait_for(done, 40, "the sweeper to hand the job to the restarted worker")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        try:
            second.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)

    with db.session_scope() as s:
        invoices = list(s.scalars(select(LocalInvoice)))
        drafts = list(s.scalars(select(Draft)))
        job = s.scalars(select(Job)).one()
    assert len(invoices) == 3, log.read_text()[-3000:]  # exactly once: no duplicate
    assert len({inv.key for inv in invoices}) == 3
    assert sorted(d.status for d in drafts) == ["drafted"] * 3
    assert {d.provider_id for d in drafts} == {str(inv.id) for inv in invoices}
    assert job.attempts == 2

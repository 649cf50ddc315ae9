"""A 429 pauses that company (or Stripe account) for every worker through the shared limiter, while
other companies go on. HTTP mocked at the wire; the limiter's clock is fake (no sleeping)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses

from connector import db, jobs, locks, worker
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Job
from connector.providers import quickbooks_oauth as oauth
from connector.providers import stripe as stripe_provider
from connector.providers.base import Throttled
from connector.providers.quickbooks_http import QboHttp
from connector.ratelimit import RedisRateLimiter
from connector.ratelimit_db import DatabaseRateLimiter
from tests.app_fixtures import TEST_REDIS_URL, load_fixture
from tests.providers.qbo_fixtures import API, CONFIG, THROTTLE_XML, customer_row

PAUSED = "9130357766900001"  # the company that answers 429
OTHER = "9130357766900002"  # another workspace's company


class FakeTime:
    def __init__(self) -> None:
        self.now = time.time()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def new_limiter(app: Any, fake_time: FakeTime) -> Any:
    """Each call: another worker process's limiter, all sharing one store (Redis or database)."""

    def make() -> Any:
        if TEST_REDIS_URL:
            return RedisRateLimiter(TEST_REDIS_URL, clock=fake_time.clock, sleep=fake_time.sleep)
        return DatabaseRateLimiter(clock=fake_time.clock, sleep=fake_time.sleep)

    return make


@pytest.fixture
def realm_suffix() -> str:
    # Redis outlives a test: unique company ids keep pauses of earlier runs out of this one.
    return str(time.time_ns())[-6:]


def _qbo(app: Any, workspace_id: int, realm: str, limiter: Any) -> QboHttp:
    store = DbCredentialStore(workspace_id, "quickbooks", secret_box(app.config))
    store.connect(
        {"access_token": "a-1", "refresh_token": "r-1", "expires_at": time.time() + 3600},
        account_id=realm,
        environment="sandbox",
    )
    return QboHttp(oauth.settings_from_config(CONFIG, "sandbox"), store, realm, limiter=limiter)


def _calls_to(rsps: responses.RequestsMock, realm: str) -> int:
    return sum(1 for c in rsps.calls if f"/company/{realm}/" in c.request.url)


@pytest.mark.parametrize(("retry_after", "pause"), [(None, 60.0), ("7", 7.0)])
def test_a_quickbooks_429_pauses_that_company_for_every_worker_and_no_other(
    app, make_workspace, rsps, new_limiter, fake_time, realm_suffix, retry_after, pause
):
    paused_realm, other_realm = PAUSED + realm_suffix, OTHER + realm_suffix
    first = make_workspace(tracker_workspace_id="1")
    second = make_workspace(tracker_workspace_id="2")
    headers = {"Content-Type": "application/xml"}
    if retry_after:
        headers["Retry-After"] = retry_after
    throttled = rsps.add(
        responses.GET,
        re.compile(rf"{API}/v3/company/{paused_realm}/customer/1.*"),
        status=429,
        body=THROTTLE_XML,
        headers=headers,
    )
    rsps.add(
        responses.GET,
        re.compile(rf"{API}/v3/company/{other_realm}/customer/1.*"),
        json={"Customer": customer_row("1", "Globex")},
    )

    worker_a = _qbo(app, first.id, paused_realm, new_limiter())
    with pytest.raises(Throttled) as info:
        worker_a.request("GET", "customer/1")
    assert info.value.retry_after == pause

    # Another worker process, another job for the same company: not sent, told how long to wait.
    worker_b = _qbo(app, first.id, paused_realm, new_limiter())
    with pytest.raises(Throttled) as info:
        worker_b.request("GET", "customer/1")
    assert info.value.retry_after == pytest.approx(pause, abs=0.01)
    assert _calls_to(rsps, paused_realm) == 1

    # The other workspace's company goes on meanwhile.
    other = _qbo(app, second.id, other_realm, new_limiter())
    assert other.request("GET", "customer/1")["Customer"]["Id"] == "1"
    assert _calls_to(rsps, other_realm) == 1

    # When the pause is over the company's requests leave again.
    fake_time.now += pause
    rsps.remove(throttled)
    rsps.add(
        responses.GET,
        re.compile(rf"{API}/v3/company/{paused_realm}/customer/1.*"),
        json={"Customer": customer_row("1", "Initech")},
    )
    assert worker_b.request("GET", "customer/1")["Customer"]["DisplayName"] == "Initech"
    assert _calls_to(rsps, paused_realm) == 2


def test_a_stripe_429_pauses_that_account_for_every_worker(
    app, workspace, rsps, new_limiter, fake_time, realm_suffix
):
    store = DbCredentialStore(workspace.id, "stripe", secret_box(app.config))
    store.connect(
        {"method": "api_key", "api_key": "rk_test_throttling"},
        account_id=f"acct_{realm_suffix}",
        environment="test",
    )
    rsps.add(
        responses.GET,
        "https://api.stripe.com/v1/customers/cus_Z",
        json=load_fixture("stripe", "error__rate_limit.json"),
        status=429,
        headers={"Retry-After": "30"},
    )
    workers = []
    for _ in range(2):
        provider = stripe_provider.create(workspace.id, store, app.config)
        provider._limiter = new_limiter()
        workers.append(provider)
    with pytest.raises(Throttled) as info:
        workers[0].get_customer("cus_Z")
    assert info.value.retry_after == 30.0
    with pytest.raises(Throttled) as info:
        workers[1].get_customer("cus_Z")  # not sent: the account is paused for everyone
    assert info.value.retry_after == pytest.approx(30.0, abs=0.01)
    assert len(rsps.calls) == 1


def test_a_short_pause_is_waited_out_not_rescheduled(app, rsps, new_limiter, fake_time):
    """Shorter than the limiter's max wait: the worker sleeps it off and sends."""
    limiter = new_limiter()
    bucket = f"stripe:acct_short_{time.time_ns()}"
    limiter.pause(bucket, 3)
    before = fake_time.now
    limiter.acquire(bucket, stripe_provider.RATE_LIMITS["test"])
    assert fake_time.now == pytest.approx(before + 3, abs=1e-3)


# --- through the worker: paused companies cost no attempts, other workspaces go first ----------
_WIRE: dict[str, Any] = {}


@worker.handler("test_quickbooks_call")
def _one_quickbooks_request(job: Job, config: Mapping[str, Any]) -> None:
    """A job that makes one QuickBooks request for its workspace's company."""
    realm = str(job.payload["realm"])
    _qbo(_WIRE["app"], job.workspace_id, realm, _WIRE["limiter"]).request("GET", "customer/1")


class JobClock:
    """One fake time for the job table (datetimes) and the limiter (epoch seconds)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_jobs_for_a_paused_company_wait_without_spending_attempts_while_others_go_on(
    app, make_workspace, rsps, realm_suffix, monkeypatch
):
    clock = JobClock()
    monkeypatch.setattr(jobs, "utcnow", clock)
    monkeypatch.setattr(locks, "utcnow", clock)
    if TEST_REDIS_URL:
        limiter: Any = RedisRateLimiter(TEST_REDIS_URL, clock=clock.epoch, sleep=clock.sleep)
    else:
        limiter = DatabaseRateLimiter(clock=clock.epoch, sleep=clock.sleep)
    _WIRE.update(app=app, limiter=limiter)
    paused_realm, other_realm = PAUSED + realm_suffix, OTHER + realm_suffix
    busy = make_workspace(tracker_workspace_id="1")
    quiet = make_workspace(tracker_workspace_id="2")
    throttled = rsps.add(
        responses.GET,
        re.compile(rf"{API}/v3/company/{paused_realm}/customer/1.*"),
        status=429,
        body=THROTTLE_XML,
        headers={"Content-Type": "application/xml"},
    )
    rsps.add(
        responses.GET,
        re.compile(rf"{API}/v3/company/{other_realm}/customer/1.*"),
        json={"Customer": customer_row("1", "Globex")},
    )

    def add_job(workspace_id: int, realm: str) -> int:
        with db.session_scope() as s:
            job = worker.new_job(workspace_id, "test_quickbooks_call", realm=realm)
            job.next_attempt_at = job.created_at = clock.now
            s.add(job)
            s.flush()
            return job.id

    backlog = [add_job(busy.id, paused_realm) for _ in range(5)]
    assert worker.run_next() == "pending"  # 429 at the wire: the company is paused for 60 s
    single = add_job(quiet.id, other_realm)
    assert worker.run_next() == "done"  # the other workspace's job goes first, and through
    for _ in range(4):
        assert worker.run_next() == "pending"  # the rest of the backlog: held by the limiter
    assert worker.run_next() == "idle"
    assert _calls_to(rsps, paused_realm) == 1  # only the first request ever left
    with db.session_scope() as s:
        waiting = [s.get(Job, job_id) for job_id in backlog]
        assert {(j.state, j.attempts) for j in waiting} == {("pending", 0)}  # no attempt spent
        assert all(j.next_attempt_at >= clock.now + timedelta(seconds=59) for j in waiting)
        assert s.get(Job, single).state == "done"

    clock.now += timedelta(seconds=62)  # the pause is over
    rsps.remove(throttled)
    rsps.add(
        responses.GET,
        re.compile(rf"{API}/v3/company/{paused_realm}/customer/1.*"),
        json={"Customer": customer_row("1", "Initech")},
    )
    while worker.run_next() != "idle":
        pass
    assert _calls_to(rsps, paused_realm) == 6
    with db.session_scope() as s:
        assert {(s.get(Job, j).state, s.get(Job, j).attempts) for j in backlog} == {("done", 1)}

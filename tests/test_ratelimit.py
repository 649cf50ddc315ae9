"""The shared provider rate limiter (GCRA with reservations, pauses), on the database and Redis.

A fake clock: "sleeping" moves it forward, so nothing here waits for real time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from connector.providers.base import Throttled
from connector.ratelimit import RedisRateLimiter
from connector.ratelimit_db import DatabaseRateLimiter
from tests.app_fixtures import TEST_REDIS_URL

QBO = ((10, 1.0), (490, 60.0))  # what connector.providers.quickbooks_http passes
SPACING = 60.0 / 490


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sent: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


BACKENDS = ["database"] + (["redis"] if TEST_REDIS_URL else [])


@pytest.fixture(params=BACKENDS)
def make_limiter(request: Any, app: Any) -> Callable[..., Any]:
    def make(fake: FakeTime, max_wait: float = 5.0) -> Any:
        if request.param == "redis":
            return RedisRateLimiter(
                str(TEST_REDIS_URL), clock=fake.clock, sleep=fake.sleep, max_wait=max_wait
            )
        return DatabaseRateLimiter(clock=fake.clock, sleep=fake.sleep, max_wait=max_wait)

    return make


@pytest.fixture
def bucket() -> str:
    return f"quickbooks:{uuid.uuid4().hex[:12]}"  # fresh state, also in a shared Redis


def _most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window - 1e-3:  # epoch floats: ~2e-7 s resolution
            first += 1
        most = max(most, last - first + 1)
    return most


def test_requests_leave_evenly_and_near_the_published_limit(make_limiter, bucket):
    fake = FakeTime()
    limiter = make_limiter(fake)
    start = fake.now
    for _ in range(1000):
        limiter.acquire(bucket, QBO)
        fake.sent.append(fake.now)
    gaps = [b - a for a, b in zip(fake.sent, fake.sent[1:], strict=False)]
    assert min(gaps) == pytest.approx(SPACING, abs=1e-5)  # evenly paced, never a burst
    assert _most_in_any_window(fake.sent, 1.0) <= 9  # Intuit: 10 per second
    assert _most_in_any_window(fake.sent, 60.0) <= 490  # Intuit: 500 per minute
    in_first_minute = sum(1 for t in fake.sent if t < start + 60 - 1e-3)
    assert in_first_minute == 490  # the whole budget is used: ~98% of Intuit's 500


def test_sixteen_workers_at_once_get_distinct_slots_not_a_burst(make_limiter, bucket):
    """Fixed windows woke every sleeper at the window edge (up to 16 in a sliding second)."""
    fake = FakeTime()
    limiter = make_limiter(fake)
    waits = [limiter._reserve(bucket, QBO, fake.now).wait for _ in range(16)]
    assert waits == pytest.approx([i * SPACING for i in range(16)], abs=1e-5)
    assert _most_in_any_window([fake.now + w for w in waits], 1.0) <= 9


def test_a_refused_attempt_costs_nothing(make_limiter, bucket):
    fake = FakeTime()
    limiter = make_limiter(fake, max_wait=1.0)
    booked = [limiter._reserve(bucket, QBO, fake.now).wait for _ in range(9)]
    assert booked[-1] == pytest.approx(8 * SPACING, abs=1e-5)  # 0.98 s: still within max_wait
    for _ in range(50):  # fifty refusals...
        with pytest.raises(Throttled) as refused:
            limiter.acquire(bucket, QBO)
        assert refused.value.retry_after == pytest.approx(9 * SPACING, abs=1e-5)
    # ...booked nothing: once the clock moves, the very next slot is free.
    fake.now += 9 * SPACING
    assert limiter._reserve(bucket, QBO, fake.now).wait == pytest.approx(0, abs=1e-5)


def test_a_pause_holds_that_company_for_every_worker_and_no_other(make_limiter, bucket):
    fake = FakeTime()
    limiter = make_limiter(fake)
    other = make_limiter(fake)  # another worker process, same shared store
    limiter.pause(bucket, 60)
    for worker in (limiter, other):
        with pytest.raises(Throttled) as paused:
            worker.acquire(bucket, QBO)
        assert paused.value.retry_after == pytest.approx(60, abs=1e-5)
    before = fake.now
    other.acquire(f"{bucket}-other-company", QBO)
    assert fake.now == before  # another company goes on at once
    fake.now += 60
    limiter.acquire(bucket, QBO)
    assert fake.now == before + 60  # the pause is over: sent without waiting


def test_a_shorter_pause_never_shortens_a_longer_one(make_limiter, bucket):
    fake = FakeTime()
    limiter = make_limiter(fake)
    limiter.pause(bucket, 60)
    limiter.pause(bucket, 2)
    assert limiter.paused_until(bucket) == pytest.approx(fake.now + 60, abs=1e-5)


def test_a_sleeper_does_not_send_into_a_pause_declared_while_it_slept(make_limiter, bucket):
    fake = FakeTime()
    limiter = make_limiter(fake)
    limiter.acquire(bucket, QBO)  # the slot now is taken; the next one is SPACING away

    def sleep_while_another_worker_gets_a_429(seconds: float) -> None:
        fake.now += seconds
        limiter.pause(bucket, 30)

    limiter._sleep = sleep_while_another_worker_gets_a_429
    with pytest.raises(Throttled) as paused:
        limiter.acquire(bucket, QBO)
    assert paused.value.retry_after == pytest.approx(30, abs=1e-5)

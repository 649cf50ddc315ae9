"""A caller woken well after its slot takes a new one instead of going out bunched with the
requests reserved after it (a busy machine must not make the provider count 11 in a second)."""

from __future__ import annotations

import uuid
from typing import Any

from connector import ratelimit
from connector.ratelimit_db import DatabaseRateLimiter

QBO = ((10, 1.0), (490, 60.0))
SPACING = 60.0 / 490


class BusyMachine:
    """A clock whose sleeps overrun by ``late`` seconds the first ``times`` times, while
    ``others`` workers reserve a slot of the same bucket during each sleep."""

    def __init__(self, late: float, times: int, others: int = 1) -> None:
        self.now = 1_800_000_000.0
        self.late, self.times, self.others = late, times, others
        self.slept: list[float] = []
        self.limiter = DatabaseRateLimiter(clock=self.clock, sleep=self.sleep)
        self.bucket = f"qbo:{uuid.uuid4().hex[:8]}"
        self.reservations: list[float] = []  # every slot handed out, by start time
        real = self.limiter._reserve

        def reserve(bucket: str, limits: Any, now: float) -> ratelimit.Decision:
            decision = real(bucket, limits, now)
            self.reservations.append(now + decision.wait)
            return decision

        self.limiter._reserve = reserve  # type: ignore[method-assign]

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        for _ in range(self.others):  # other workers, meanwhile
            self.limiter._reserve(self.bucket, QBO, self.now)
        self.slept.append(seconds)
        self.now += seconds + (self.late if len(self.slept) <= self.times else 0.0)


def test_a_late_wake_up_goes_out_at_a_new_slot_after_the_others(app: Any) -> None:
    machine = BusyMachine(late=0.3, times=1)
    machine.limiter.acquire(machine.bucket, QBO)  # the first goes at once
    machine.limiter.acquire(machine.bucket, QBO)  # wakes 0.3 s late: after the other's slot
    first_slot, late_slot, others_slot, new_slot = machine.reservations[:4]
    assert late_slot == first_slot + SPACING and others_slot > late_slot
    assert new_slot > others_slot  # not bunched ahead of the one reserved meanwhile
    assert machine.now >= new_slot


def test_on_time_wake_ups_sleep_once_and_late_ones_give_up_after_a_few_tries(app: Any) -> None:
    on_time = BusyMachine(late=0.0, times=0)
    on_time.limiter.acquire(on_time.bucket, QBO)
    on_time.limiter.acquire(on_time.bucket, QBO)
    assert len(on_time.slept) == 1

    always_late = BusyMachine(late=0.3, times=99, others=10)
    always_late.limiter.acquire(always_late.bucket, QBO)
    always_late.limiter.acquire(always_late.bucket, QBO)  # goes after LATE_RETRIES new slots
    assert len(always_late.slept) == ratelimit.LATE_RETRIES + 1

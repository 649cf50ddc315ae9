"""The provider rate limiter shared by every worker: "10 per second and 500 per minute per company",
"60 a minute, 5,000 a day and 5 at once per organisation".

GCRA (the generic cell rate algorithm, a.k.a. theoretical arrival time) with reservations. For
each limit ``(max requests, per seconds)`` a bucket remembers the earliest time its next request
may leave (its TAT); requests are spaced ``per / max`` apart, so they leave evenly instead of in
bursts at window edges. A caller *reserves* the next free slot and sleeps until it: the budget is
spent only on requests that are sent, and concurrent callers get distinct slots instead of waking
together. A slot further away than ``max_wait`` is not reserved (a refusal costs nothing): the
caller gets :class:`Throttled` and its job is rescheduled for then, without spending an attempt,
rather than holding a worker thread.

A limit may allow a burst: ``(max, per, burst)`` lets ``burst`` requests leave at once before the
spacing applies (GCRA's tolerance), which a daily budget needs (5,000 a day spaced evenly would
be one request every 17 s). ``(max, per)`` means no burst: evenly spaced.

Some providers also cap the calls in flight (5 at once per organisation, say): a caller holds one
of the bucket's ``concurrent`` slots while its request is out; a slot is a leased row (or a Redis
sorted-set member) that lapses if its holder dies.

A provider that answers 429 calls :meth:`pause` on the bucket: every worker's calls to that company
or account wait until the pause ends, while other buckets go on.

The state lives in Redis when one is configured (one Lua script, atomic), else in the database (one
row per bucket, read and written under a row lock: :mod:`connector.ratelimit_db`, so that the
providers that use the limiter never reach the database themselves). Both use the callers'
clocks, which the deployment keeps in sync (NTP); the limits passed by providers keep a small
margin for that.

Not a library: ``limits`` has no SQL storage, and ``pyrate-limiter`` keeps a log of every request
in its own connections and polls while blocked; neither reserves slots nor shares a provider's
pause (Retry-After) between processes, which is most of what this module does.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from connector.providers.base import Throttled

# ((max requests, per seconds), ...) or ((max requests, per seconds, burst), ...)
Limits = tuple[tuple[int, float] | tuple[int, float, int], ...]

# How long a caller may sleep for its slot before it is refused (and its job rescheduled).
DEFAULT_MAX_WAIT_SECONDS = 5.0
_CLOCK_SLACK_SECONDS = 0.001
# Woken later than this after its slot, a caller reserves a new one (at most LATE_RETRIES times).
LATE_SECONDS = 0.05
LATE_RETRIES = 2


@dataclass(frozen=True)
class Decision:
    """Where a request fits: ``wait`` seconds from now; ``tats`` to store if it is reserved."""

    wait: float
    tats: dict[str, float]
    paused: bool  # the wait is (at least partly) a pause the provider asked for


def _key(per: float) -> str:
    return f"{per:g}"


def _shape(limit: tuple[int, float] | tuple[int, float, int]) -> tuple[str, float, float]:
    """(state key, interval between requests, burst tolerance in seconds) of one limit."""
    max_requests, per = limit[0], float(limit[1])
    burst = int(limit[2]) if len(limit) > 2 else 1  # type: ignore[misc]
    interval = per / max_requests
    return _key(per), interval, max(0, burst - 1) * interval


def decide(tats: Mapping[str, float], paused_until: float, now: float, limits: Limits) -> Decision:
    """GCRA: the earliest slot that respects every limit and the pause (pure, for both stores)."""
    slot = max(now, paused_until)
    shapes = [_shape(limit) for limit in limits]
    for key, _interval, tolerance in shapes:
        slot = max(slot, float(tats.get(key, 0.0)) - tolerance)
    new_tats = dict(tats)
    for key, interval, _tolerance in shapes:
        new_tats[key] = max(float(tats.get(key, 0.0)), slot) + interval
    return Decision(wait=slot - now, tats=new_tats, paused=paused_until > now)


def _refusal(bucket: str, decision: Decision) -> Throttled:
    if decision.paused:
        message = f"The provider paused requests for {bucket}; waiting for the pause to end."
    else:
        message = f"The shared rate limit of {bucket} is fully booked for the next seconds."
    return Throttled(message, retry_after=decision.wait, code="rate_limited")


class SharedLimiter:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ):
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait

    # Backends: reserve atomically, read the pause, extend the pause.
    def _reserve(self, bucket: str, limits: Limits, now: float) -> Decision:
        raise NotImplementedError

    def paused_until(self, bucket: str) -> float:
        raise NotImplementedError

    def _pause_until(self, bucket: str, until: float) -> None:
        raise NotImplementedError

    def acquire(self, bucket: str, limits: Limits) -> None:
        """Block until one more request to ``bucket`` may be sent; raise :class:`Throttled` when
        that is more than ``max_wait`` away (nothing is reserved then).

        A caller that wakes up well after its slot (a busy machine) takes a new slot rather than
        going out late: sent late, it would arrive bunched with the requests reserved after it,
        and a provider counting any sliding second (Intuit: 10) refuses the one too many. After
        a few late wake-ups it goes anyway, so no caller waits forever.
        """
        for _ in range(LATE_RETRIES + 1):
            now = self._clock()
            decision = self._reserve(bucket, limits, now)
            if decision.wait > self.max_wait:
                raise _refusal(bucket, decision)
            if decision.wait <= 0:
                return
            slot = now + decision.wait
            self._sleep(decision.wait)
            # A 429 elsewhere may have paused the company while we slept: do not add to it.
            until = self.paused_until(bucket)
            now = self._clock()
            # Redis keeps times to the microsecond: the pause we slept out may read a hair later.
            if until > now + _CLOCK_SLACK_SECONDS:
                raise _refusal(bucket, Decision(wait=until - now, tats={}, paused=True))
            if now - slot <= LATE_SECONDS:
                return

    def pause(self, bucket: str, seconds: float) -> None:
        """The provider asked to wait: hold every worker's requests to ``bucket`` that long."""
        self._pause_until(bucket, self._clock() + max(0.0, seconds))

    # Backends: take one of ``limit`` slots (a token, or None when all are held), give it back.
    def _take_slot(self, bucket: str, limit: int, lease: float) -> str | None:
        raise NotImplementedError

    def _give_slot(self, bucket: str, token: str) -> None:
        raise NotImplementedError

    @contextmanager
    def concurrent(self, bucket: str, limit: int, lease: float = 120.0) -> Iterator[None]:
        """Hold one of ``bucket``'s ``limit`` in-flight slots (shared by every process) while the
        block runs. Waits up to ``max_wait`` for one; then raises :class:`Throttled`. A slot
        whose holder died lapses after ``lease`` seconds."""
        deadline = time.monotonic() + self.max_wait
        delay = 0.02
        while (token := self._take_slot(bucket, limit, lease)) is None:
            if time.monotonic() >= deadline:
                raise Throttled(
                    f"{limit} requests to {bucket} are already in flight; trying again shortly.",
                    retry_after=1.0,
                    code="concurrency",
                )
            time.sleep(delay + random.uniform(0, delay))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            self._give_slot(bucket, token)


# KEYS[1] = the bucket's hash; ARGV = now, max_wait, then (per, interval, tolerance) triplets. Same
# arithmetic as ``decide``; returns {wait, paused} as strings (Lua numbers lose precision through
# Redis replies).
_RESERVE = """
local now = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local paused_until = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
local slot = math.max(now, paused_until)
for i = 3, #ARGV, 3 do
  local tat = tonumber(redis.call('HGET', KEYS[1], 'tat:' .. ARGV[i]) or '0')
  slot = math.max(slot, tat - tonumber(ARGV[i + 2]))
end
local wait = slot - now
if wait <= max_wait then
  local last = slot
  for i = 3, #ARGV, 3 do
    local old = tonumber(redis.call('HGET', KEYS[1], 'tat:' .. ARGV[i]) or '0')
    local tat = math.max(old, slot) + tonumber(ARGV[i + 1])
    redis.call('HSET', KEYS[1], 'tat:' .. ARGV[i], string.format('%.6f', tat))
    last = math.max(last, tat)
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + 120) * 1000))
end
return {string.format('%.6f', wait), paused_until > now and '1' or '0'}
"""

_PAUSE = """
local until_ = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if until_ > current then
  redis.call('HSET', KEYS[1], 'paused_until', string.format('%.6f', until_))
end
local ttl = math.ceil((until_ - tonumber(ARGV[2]) + 120) * 1000)
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

# KEYS[1] = the bucket's slot set (member: token, score: lease end); ARGV = now, limit, lease end,
# token. Lapsed leases are dropped first, so a crashed holder frees its slot.
_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[3]) - tonumber(ARGV[1]) + 60) * 1000))
  return 1
end
return 0
"""


class RedisRateLimiter(SharedLimiter):
    def __init__(
        self,
        url: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ):
        import redis

        super().__init__(clock, sleep, max_wait)
        self._redis = redis.Redis.from_url(url)
        self._reserve_script = self._redis.register_script(_RESERVE)
        self._pause_script = self._redis.register_script(_PAUSE)
        self._take_slot_script = self._redis.register_script(_TAKE_SLOT)

    @staticmethod
    def _name(bucket: str) -> str:
        return f"ratelimit:{bucket}"

    def _reserve(self, bucket: str, limits: Limits, now: float) -> Decision:
        args: list[str] = [f"{now:.6f}", f"{self.max_wait:.6f}"]
        for limit in limits:
            key, interval, tolerance = _shape(limit)
            args += [key, f"{interval:.6f}", f"{tolerance:.6f}"]
        wait, paused = self._reserve_script(keys=[self._name(bucket)], args=args)
        return Decision(wait=float(wait), tats={}, paused=paused in (b"1", "1"))

    def paused_until(self, bucket: str) -> float:
        value = self._redis.hget(self._name(bucket), "paused_until")
        return float(value or 0.0)

    def _pause_until(self, bucket: str, until: float) -> None:
        self._pause_script(keys=[self._name(bucket)], args=[f"{until:.6f}", f"{self._clock():.6f}"])

    def _take_slot(self, bucket: str, limit: int, lease: float) -> str | None:
        token = uuid.uuid4().hex
        now = time.time()  # lease ends are wall-clock times shared by every process
        args = [f"{now:.6f}", str(limit), f"{now + lease:.6f}", token]
        taken = self._take_slot_script(keys=[f"ratelimit-slots:{bucket}"], args=args)
        return token if int(taken) == 1 else None

    def _give_slot(self, bucket: str, token: str) -> None:
        self._redis.zrem(f"ratelimit-slots:{bucket}", token)


_limiter: SharedLimiter | None = None


def configure(limiter: SharedLimiter) -> None:
    """The app factory installs the process's shared limiter (Redis, or the database's)."""
    global _limiter
    _limiter = limiter


def shared_limiter() -> SharedLimiter:
    if _limiter is None:
        raise RuntimeError("No shared rate limiter: create_app() configures it.")
    return _limiter

"""A request limiter shared by every worker: "10 per second and 500 per minute per company".

Fixed windows counted in Redis when one is configured (INCR + EXPIRE), else in the database
(an upsert on ``rate_limit_counters``). A fixed window can let up to twice the limit through
across a window edge, so callers pass limits with a margin below the provider's published ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connector import db
from connector.models import RateLimitCounter

Limits = tuple[tuple[int, float], ...]  # ((max requests, per seconds), ...)


class DatabaseRateLimiter:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._clock = clock
        self._sleep = sleep

    def _increment(self, bucket: str, window: int) -> int:
        engine = db.engine()
        insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(RateLimitCounter)
            .values(bucket=bucket, window_start=window, count=1)
            .on_conflict_do_update(
                index_elements=["bucket", "window_start"],
                set_={"count": RateLimitCounter.count + 1},
            )
            .returning(RateLimitCounter.count)
        )
        with db.new_session() as s:
            count = int(s.execute(stmt).scalar_one())
            if count == 1:
                # First hit of a new window: forget old windows of this bucket.
                s.execute(
                    delete(RateLimitCounter).where(
                        RateLimitCounter.bucket == bucket, RateLimitCounter.window_start < window
                    )
                )
            s.commit()
        return count

    def acquire(self, bucket: str, limits: Limits) -> None:
        while True:
            wait = 0.0
            for max_requests, per in limits:
                now = self._clock()
                window = math.floor(now / per)
                count = self._increment(f"{bucket}:{per:g}", window)
                if count > max_requests:
                    wait = max(wait, (window + 1) * per - now)
            if wait <= 0:
                return
            self._sleep(wait + 0.01)


class RedisRateLimiter:
    def __init__(self, url: str, clock: Callable[[], float] = time.time, sleep=time.sleep):
        import redis

        self._redis = redis.Redis.from_url(url)
        self._clock = clock
        self._sleep = sleep

    def acquire(self, bucket: str, limits: Limits) -> None:
        while True:
            wait = 0.0
            for max_requests, per in limits:
                now = self._clock()
                window = math.floor(now / per)
                key = f"ratelimit:{bucket}:{per:g}:{window}"
                pipe = self._redis.pipeline()
                pipe.incr(key)
                pipe.expire(key, math.ceil(per) + 1)
                count = int(pipe.execute()[0])
                if count > max_requests:
                    wait = max(wait, (window + 1) * per - now)
            if wait <= 0:
                return
            self._sleep(wait + 0.01)


_limiter: DatabaseRateLimiter | RedisRateLimiter | None = None


def configure(redis_url: str | None) -> None:
    global _limiter
    _limiter = RedisRateLimiter(redis_url) if redis_url else DatabaseRateLimiter()


def shared_limiter() -> DatabaseRateLimiter | RedisRateLimiter:
    global _limiter
    if _limiter is None:
        _limiter = DatabaseRateLimiter()
    return _limiter

"""The shared provider rate limiter's state in the database, when no Redis is configured: one
``rate_limit_states`` row per bucket (see :mod:`connector.ratelimit` for the algorithm)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connector import db
from connector.models import RateLimitState
from connector.ratelimit import Decision, Limits, SharedLimiter, decide


class DatabaseRateLimiter(SharedLimiter):
    """One ``rate_limit_states`` row per bucket, updated under a row lock (SQLite: write lock)."""

    def _locked_row(self, s: Session, bucket: str) -> RateLimitState:
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        # The insert also takes SQLite's write lock before the read below (no lost updates).
        s.execute(
            insert(RateLimitState)
            .values(bucket=bucket, tats={}, paused_until=0.0)
            .on_conflict_do_nothing(index_elements=["bucket"])
        )
        row = s.scalars(
            select(RateLimitState).where(RateLimitState.bucket == bucket).with_for_update()
        ).one()
        return row

    def _reserve(self, bucket: str, limits: Limits, now: float) -> Decision:
        with db.session_scope() as s:
            row = self._locked_row(s, bucket)
            decision = decide(row.tats or {}, float(row.paused_until or 0.0), now, limits)
            if decision.wait <= self.max_wait:
                row.tats = decision.tats
        return decision

    def paused_until(self, bucket: str) -> float:
        with db.session_scope() as s:
            value = s.scalar(
                select(RateLimitState.paused_until).where(RateLimitState.bucket == bucket)
            )
        return float(value or 0.0)

    def _pause_until(self, bucket: str, until: float) -> None:
        with db.session_scope() as s:
            row = self._locked_row(s, bucket)
            row.paused_until = max(float(row.paused_until or 0.0), until)

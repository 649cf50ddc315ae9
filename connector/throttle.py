"""Failed sign-in throttling, per account and per client address, shared by every process.

Counting is the ``limits`` library's (the engine under Flask-Limiter), fixed windows. Its
storage must be shared by all gunicorn workers, so it is Redis when ``REDIS_URL`` is configured
and otherwise the database (``DatabaseStorage`` below, a ``limits`` storage over the
``throttle_counters`` table); in-memory counters would give each worker its own allowance.

Only failures count: the sign-in view asks ``retry_after`` before checking a password, and
calls ``failed`` after a wrong one. A correct password does not get through a blocked account
or address, so guessing cannot continue until the window ends.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from connector import db
from connector.models import ThrottleCounter


class DatabaseStorage(Storage):
    """A ``limits`` storage in the application database: one row per key with its expiry."""

    STORAGE_SCHEME = ["connector-db"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        insert = pg_insert if db.engine().dialect.name == "postgresql" else sqlite_insert
        stmt = insert(ThrottleCounter).values(key=key, count=amount, expires_at=now + expiry)
        expired = ThrottleCounter.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "count": case((expired, amount), else_=ThrottleCounter.count + amount),
                "expires_at": case((expired, now + expiry), else_=ThrottleCounter.expires_at),
            },
        ).returning(ThrottleCounter.count)
        with db.new_session() as s:
            count = int(s.execute(stmt).scalar_one())
            if count == amount:
                # A new window: forget every expired key, so the table stays small.
                s.execute(delete(ThrottleCounter).where(ThrottleCounter.expires_at <= now))
            s.commit()
        return count

    def _row(self, key: str) -> ThrottleCounter | None:
        with db.new_session() as s:
            row = s.get(ThrottleCounter, key)
            if row is None or row.expires_at <= time.time():
                return None
            s.expunge(row)
            return row

    def get(self, key: str) -> int:
        row = self._row(key)
        return row.count if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row.expires_at if row else time.time()

    def check(self) -> bool:
        try:
            with db.new_session() as s:
                s.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with db.new_session() as s:
            deleted = s.execute(delete(ThrottleCounter)).rowcount
            s.commit()
        return deleted

    def clear(self, key: str) -> None:
        with db.new_session() as s:
            s.execute(delete(ThrottleCounter).where(ThrottleCounter.key == key))
            s.commit()


def make_storage(redis_url: str | None) -> Storage:
    if redis_url:
        return storage_from_string(redis_url)
    return DatabaseStorage()


def _account_key(email: str) -> str:
    # Hashed: keys stay short and the store holds no email addresses.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class LoginThrottle:
    def __init__(self, storage: Storage, per_account: str, per_address: str):
        self.storage = storage
        self._limiter = FixedWindowRateLimiter(storage)
        self._per_account: RateLimitItem = parse(per_account)
        self._per_address: RateLimitItem = parse(per_address)

    def _checks(self, email: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        return [
            (self._per_account, "login-account", _account_key(email)),
            (self._per_address, "login-address", address or "unknown"),
        ]

    def retry_after(self, email: str, address: str) -> int | None:
        """Seconds until this account and address may try again; None when they may now."""
        waits = []
        for item, scope, key in self._checks(email, address):
            if not self._limiter.test(item, scope, key):
                reset = self._limiter.get_window_stats(item, scope, key).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None

    def failed(self, email: str, address: str) -> None:
        for item, scope, key in self._checks(email, address):
            self._limiter.hit(item, scope, key)

    def succeeded(self, email: str) -> None:
        """The right password: the account's failures are forgiven (the address's are not)."""
        self._limiter.clear(self._per_account, "login-account", _account_key(email))

    def reset(self) -> None:
        self.storage.reset()

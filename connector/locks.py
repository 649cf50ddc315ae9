"""Advisory locks shared by every process that can reach the database.

A row in ``locks`` is the mutex: inserting it acquires, deleting it releases, and ``expires_at``
lets another process take over a lock whose holder crashed. Works the same on SQLite and PostgreSQL,
so "one QuickBooks token refresh at a time per company" holds across all web and worker processes.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, OperationalError

from connector import db
from connector.models import Lock, utcnow


class LockTimeout(TimeoutError):
    pass


# Locks this thread holds, so a long job's heartbeat can extend them with its lease.
_held = threading.local()


def _held_locks() -> list[tuple[str, str]]:
    if not hasattr(_held, "locks"):
        _held.locks = []
    return _held.locks


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(name: str, owner: str, ttl: float) -> bool:
    now = utcnow()
    with db.new_session() as s:
        # Take over a lock whose holder died without releasing it.
        s.execute(delete(Lock).where(Lock.name == name, Lock.expires_at < now))
        s.add(Lock(name=name, owner=owner, expires_at=now + timedelta(seconds=ttl)))
        try:
            s.commit()
            return True
        except (IntegrityError, OperationalError):
            s.rollback()
            return False


def release(name: str, owner: str) -> None:
    with db.new_session() as s:
        s.execute(delete(Lock).where(Lock.name == name, Lock.owner == owner))
        s.commit()


@contextmanager
def advisory_lock(name: str, *, ttl: float = 60.0, timeout: float = 30.0) -> Iterator[None]:
    """Hold ``name`` for at most ``ttl`` seconds; wait up to ``timeout`` to get it."""
    owner = _owner()
    deadline = time.monotonic() + timeout
    delay = 0.02
    while not try_acquire(name, owner, ttl):
        if time.monotonic() >= deadline:
            raise LockTimeout(f"could not acquire lock {name!r} within {timeout:.0f}s")
        time.sleep(delay + random.uniform(0, delay))  # noqa: S311 - jitter, not crypto
        delay = min(delay * 2, 0.5)
    _held_locks().append((name, owner))
    try:
        yield
    finally:
        _held_locks().remove((name, owner))
        release(name, owner)


def extend_held(ttl: float) -> None:
    """Push back the expiry of every lock the current thread holds."""
    held = list(_held_locks())
    if not held:
        return
    expires = utcnow() + timedelta(seconds=ttl)
    with db.new_session() as s:
        for name, owner in held:
            s.execute(
                update(Lock)
                .where(Lock.name == name, Lock.owner == owner)
                .values(expires_at=expires)
            )
        s.commit()

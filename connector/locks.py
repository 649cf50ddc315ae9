"""Advisory locks shared by every process that can reach the database.

A row in ``locks`` is the mutex: inserting it acquires, deleting it releases, and ``expires_at``
lets another process take over a lock whose holder crashed. Works the same on SQLite and PostgreSQL,
so "one QuickBooks token refresh at a time per company" holds across all web and worker processes.

A lock taken with ``keepalive=True`` (the per-timesheet lock of a job) has a short ``ttl`` that the
worker's heartbeat thread renews (:func:`renew_kept_alive`) for as long as the holding process
lives: a slow holder keeps it, a SIGKILLed one loses it within one ``ttl``.
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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from connector import db
from connector.models import Lock, utcnow


class LockTimeout(TimeoutError):
    pass


# Locks this thread holds, so a long job's heartbeat can extend them with its lease.
_held = threading.local()
# Locks of this process renewed by the heartbeat thread while held: (name, owner) -> ttl.
_kept_alive: dict[tuple[str, str], float] = {}
_kept_alive_guard = threading.Lock()


def _held_locks() -> list[tuple[str, str]]:
    if not hasattr(_held, "locks"):
        _held.locks = []
    return _held.locks


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(name: str, owner: str, ttl: float) -> bool:
    """Take ``name`` if it is free or its holder's time ran out (a crashed holder): one upsert."""
    now = utcnow()
    insert = pg_insert if db.engine().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Lock).values(name=name, owner=owner, expires_at=now + timedelta(seconds=ttl))
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
        where=Lock.expires_at < now,
    ).returning(Lock.owner)
    try:
        with db.autocommit_session() as s:
            return s.execute(stmt).scalar_one_or_none() == owner
    except OperationalError:  # SQLite: the database stayed locked past its busy timeout
        return False


def release(name: str, owner: str) -> None:
    with db.autocommit_session() as s:
        s.execute(delete(Lock).where(Lock.name == name, Lock.owner == owner))


@contextmanager
def advisory_lock(
    name: str, *, ttl: float = 60.0, timeout: float = 30.0, keepalive: bool = False
) -> Iterator[None]:
    """Hold ``name``; wait up to ``timeout`` to get it.

    Without ``keepalive`` the lock lapses ``ttl`` seconds after it was taken (or last extended);
    with it, :func:`renew_kept_alive` pushes the expiry back while this process holds it.
    """
    owner = _owner()
    deadline = time.monotonic() + timeout
    delay = 0.02
    while not try_acquire(name, owner, ttl):
        if time.monotonic() >= deadline:
            raise LockTimeout(f"could not acquire lock {name!r} within {timeout:.0f}s")
        time.sleep(delay + random.uniform(0, delay))  # noqa: S311 - jitter, not crypto
        delay = min(delay * 2, 0.5)
    _held_locks().append((name, owner))
    if keepalive:
        with _kept_alive_guard:
            _kept_alive[(name, owner)] = ttl
    try:
        yield
    finally:
        if keepalive:
            with _kept_alive_guard:
                _kept_alive.pop((name, owner), None)
        _held_locks().remove((name, owner))
        release(name, owner)


def _extend(held: dict[tuple[str, str], float]) -> list[str]:
    """Push back the expiry of these locks; returns the names no longer held by their owner."""
    if not held:
        return []
    now = utcnow()
    lost = []
    with db.new_session() as s:
        for (name, owner), ttl in held.items():
            result = s.execute(
                update(Lock)
                .where(Lock.name == name, Lock.owner == owner)
                .values(expires_at=now + timedelta(seconds=ttl))
            )
            if result.rowcount != 1:
                lost.append(name)
        s.commit()
    return lost


def extend_held(ttl: float) -> list[str]:
    """Push back the expiry of every lock the current thread holds; returns the names it lost."""
    return _extend({key: ttl for key in _held_locks()})


def renew_kept_alive() -> list[str]:
    """Renew every ``keepalive`` lock this process holds (the heartbeat thread calls this)."""
    with _kept_alive_guard:
        held = dict(_kept_alive)
    return _extend(held)

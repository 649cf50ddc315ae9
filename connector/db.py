"""The database engine and sessions, shared by the web app, the CLI and the worker.

Plain SQLAlchemy 2 (no Flask extension) so the worker and pure helpers need no app context.
"""

from __future__ import annotations

import decimal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import String, TypeDecorator, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker


class Base(DeclarativeBase):
    pass


class DecimalString(TypeDecorator[decimal.Decimal]):
    """Money as an exact decimal string: SQLite's NUMERIC is a float underneath."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, never float")
        return str(decimal.Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> decimal.Decimal | None:
        return None if value is None else decimal.Decimal(value)


_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
_autocommit_factory: sessionmaker[Session] | None = None
# Request- and thread-scoped session for the web layer; the worker opens its own per job.
session: scoped_session[Session] = scoped_session(lambda: _factory()())


def _factory() -> sessionmaker[Session]:
    if _session_factory is None:
        raise RuntimeError("database not initialised: call connector.db.init_engine(url) first")
    return _session_factory


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while the worker writes; busy_timeout waits for a writer
    # instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# A pooled connection idle for longer than this is pinged before use (see _ping_idle_connections).
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling, for connections that sat idle only.

    ``pool_pre_ping`` pings on every checkout, and a worker opens a dozen short sessions per
    draft: a round trip more each. A connection that went back to the pool a moment ago was
    alive then; one that idled longer (a database restart, a firewall's idle timeout) is pinged
    first, and replaced if the ping fails (on DisconnectionError the pool discards it and
    connects again).
    """
    dialect = engine.dialect

    def mark_checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return  # just connected, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection failed its ping: {exc}") from exc

    event.listen(engine.pool, "checkin", mark_checked_in)
    event.listen(engine.pool, "checkout", ping_if_idle)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10)
    _ping_idle_connections(engine)
    return engine


def init_engine(url: str) -> Engine:
    """(Re)bind the module to a database; idempotent for the same URL."""
    global _engine, _session_factory, _autocommit_factory
    if _engine is not None and str(_engine.url) == str(make_url_safe(url)):
        return _engine
    if _engine is not None:
        session.remove()
        _engine.dispose()
    _engine = make_engine(url)
    _session_factory = sessionmaker(bind=_engine, expire_on_commit=False)
    _autocommit_factory = sessionmaker(
        bind=_engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )
    return _engine


def make_url_safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(url))


def engine() -> Engine:
    if _engine is None:
        raise RuntimeError("database not initialised: call connector.db.init_engine(url) first")
    return _engine


def new_session() -> Session:
    return _factory()()


def autocommit_session() -> Session:
    """A session whose statements each commit on their own (autocommit).

    For one-query reads and for writes that are a single statement (an upsert, a delete): in a
    transaction each would also cost a BEGIN and a COMMIT round trip (psycopg sends BEGIN
    before the first statement). Never for several writes that must hold together: nothing
    rolls back. Objects it loads stay usable after it closes.
    """
    if _autocommit_factory is None:
        raise RuntimeError("database not initialised: call connector.db.init_engine(url) first")
    return _autocommit_factory()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A short unit of work: commit on success, roll back on any error."""
    s = new_session()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
    finally:
        s.close()

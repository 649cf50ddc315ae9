"""Pooled connections: pinged only after they sat idle (a dead one is replaced), and a read
session's autocommit never leaks into the next transaction."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from connector import db
from connector.models import Workspace


@pytest.fixture
def pg_engine(database_url: str) -> Any:
    if not database_url.startswith("postgresql"):
        pytest.skip("the idle ping is PostgreSQL's (SQLite has no server to lose)")
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


def _pings(engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        seen.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def test_a_connection_back_in_the_pool_a_moment_ago_is_not_pinged(
    pg_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings = _pings(pg_engine, monkeypatch)
    for _ in range(3):
        with pg_engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with pg_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 1


def test_an_idle_connection_the_server_closed_is_replaced_not_an_error(
    pg_engine: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pg_engine.connect() as conn:
        killed = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    other = create_engine(database_url, poolclass=NullPool)
    with other.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed}).scalar()
    other.dispose()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has idled long enough
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != killed


def test_a_read_session_leaves_pooled_connections_transactional(app: Any, workspace: Any) -> None:
    for _ in range(3):  # every pooled connection has served a read session
        with db.autocommit_session() as s:
            assert s.get(Workspace, workspace.id) is not None
    with db.new_session() as s:
        s.get(Workspace, workspace.id).name = "renamed, then rolled back"
        s.flush()
        s.rollback()
    with db.autocommit_session() as s:
        assert s.get(Workspace, workspace.id).name != "renamed, then rolled back"

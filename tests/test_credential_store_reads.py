"""What a provider reads of its connection costs few round trips, and never a stale token.

The account id, environment and meta are read once per SNAPSHOT_SECONDS per store; the read
cache (customers) is kept in the process for LOCAL_CACHE_SECONDS. Credentials, writes and
anything read under the store's lock always go to the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete

from connector import db
from connector.connections import store as store_module
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import ProviderCacheEntry


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    opened: list[int] = []
    for name in ("new_session", "autocommit_session"):
        real = getattr(db, name)

        def counted(real: Any = real) -> Any:
            opened.append(1)
            return real()

        monkeypatch.setattr(db, name, counted)
    return opened


def _store(app: Any, workspace: Any) -> DbCredentialStore:
    return DbCredentialStore(workspace.id, "quickbooks", secret_box(app.config))


def _connected(app: Any, workspace: Any) -> DbCredentialStore:
    store = _store(app, workspace)
    store.connect(
        {"access_token": "a1", "refresh_token": "r1"},
        account_id="realm-1",
        environment="sandbox",
        meta={"service_item_id": "7"},
    )
    return store


def test_one_store_reads_its_connection_once_for_many_reads(app, workspace, sessions):
    store = _connected(app, workspace)
    sessions.clear()
    for _ in range(5):
        assert store.account_id == "realm-1"
        assert store.environment == "sandbox"
        assert store.meta()["service_item_id"] == "7"
    assert len(sessions) == 1


def test_credentials_are_always_read_fresh(app, workspace):
    store = _connected(app, workspace)
    assert store.load()["refresh_token"] == "r1"
    _store(app, workspace).save({"access_token": "a2", "refresh_token": "r2"})  # rotated elsewhere
    assert store.load()["refresh_token"] == "r2"


def test_a_write_and_a_lock_make_the_next_read_fresh(app, workspace):
    store = _connected(app, workspace)
    other = _store(app, workspace)
    assert store.meta()["service_item_id"] == "7"
    store.update_meta(service_item_id="8")
    assert store.meta()["service_item_id"] == "8"  # its own write
    other.update_meta(service_item_id="9")
    assert store.meta()["service_item_id"] == "8"  # another's, within the snapshot
    with store.lock("fill"):
        assert store.meta()["service_item_id"] == "9"  # under the lock: what the holder wrote


def test_the_snapshot_expires(app, workspace, monkeypatch):
    store = _connected(app, workspace)
    assert store.meta()["service_item_id"] == "7"
    _store(app, workspace).update_meta(service_item_id="9")
    monkeypatch.setattr(store_module, "SNAPSHOT_SECONDS", 0.0)
    assert store.meta()["service_item_id"] == "9"


def test_the_read_cache_is_kept_in_the_process_and_dropped_with_it(app, workspace, sessions):
    fetched = datetime(2026, 1, 1, tzinfo=UTC)
    _connected(app, workspace).cache_put("realm-1:customer:1", {"id": "1"}, fetched)
    sessions.clear()
    reader = _store(app, workspace)  # another job, same process
    assert reader.cache_get("realm-1:customer:1") == ({"id": "1"}, fetched)
    assert sessions == []
    with reader.lock("fill"):
        sessions.clear()
        assert reader.cache_get("realm-1:customer:1") is not None
        assert len(sessions) == 1  # under the lock: the database's
    reader.cache_drop("realm-1:")
    assert reader.cache_get("realm-1:customer:1") is None
    assert _store(app, workspace).cache_get("realm-1:customer:1") is None


def test_a_drop_in_another_process_is_seen_once_the_local_copy_expires(app, workspace, monkeypatch):
    store = _connected(app, workspace)
    store.cache_put("realm-1:customer:1", {"id": "1"})
    with db.session_scope() as s:  # what another process's cache_drop does
        s.execute(delete(ProviderCacheEntry))
    assert store.cache_get("realm-1:customer:1") is not None  # the local copy, for now
    monkeypatch.setattr(store_module, "LOCAL_CACHE_SECONDS", 0.0)
    assert store.cache_get("realm-1:customer:1") is None

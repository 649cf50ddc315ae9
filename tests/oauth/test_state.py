"""The connect flow's state, server-side: single use (even for two callbacks at once), bound to
the admin and the provider, expiring, and swept when old."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from connector import db
from connector.models import OAuthState, utcnow
from connector.oauth import state as oauth_state


def count() -> int:
    with db.new_session() as s:
        return int(s.scalar(select(func.count()).select_from(OAuthState)) or 0)


def test_a_state_is_taken_once_with_its_data(app: Any, workspace: Any, make_admin: Any) -> None:
    admin = make_admin(workspace)
    state = oauth_state.begin("books", admin_id=admin, workspace_id=workspace.id, env="sandbox")
    pending = oauth_state.take("books", state, admin_id=admin)
    assert pending is not None
    assert (pending.workspace_id, pending.admin_id, pending.data) == (
        workspace.id,
        admin,
        {"env": "sandbox"},
    )
    assert oauth_state.take("books", state, admin_id=admin) is None
    assert count() == 0


def test_another_admin_or_provider_finds_nothing_and_burns_nothing(
    app: Any, workspace: Any, make_admin: Any
) -> None:
    admin = make_admin(workspace)
    other = make_admin(workspace, email="other@example.com")
    state = oauth_state.begin("books", admin_id=admin, workspace_id=workspace.id)
    assert oauth_state.take("books", state, admin_id=other) is None
    assert oauth_state.take("tracker", state, admin_id=admin) is None
    assert oauth_state.take("books", state + "x", admin_id=admin) is None
    assert oauth_state.take("books", "", admin_id=admin) is None
    assert oauth_state.take("books", state, admin_id=admin) is not None


def test_an_expired_state_is_refused_and_old_ones_are_swept(
    app: Any, workspace: Any, make_admin: Any, monkeypatch: Any
) -> None:
    admin = make_admin(workspace)
    state = oauth_state.begin("books", admin_id=admin, workspace_id=workspace.id, max_age=60)
    later = utcnow() + timedelta(seconds=61)
    monkeypatch.setattr(oauth_state, "utcnow", lambda: later)
    assert oauth_state.take("books", state, admin_id=admin) is None

    oauth_state.begin("books", admin_id=admin, workspace_id=workspace.id, max_age=60)
    stale = oauth_state.begin("books", admin_id=admin, workspace_id=workspace.id, max_age=1)
    monkeypatch.setattr(oauth_state, "utcnow", lambda: later + timedelta(seconds=2))
    oauth_state.begin("books", admin_id=admin, workspace_id=workspace.id)
    assert count() == 2  # the 1-second one is gone
    assert oauth_state.take("books", stale, admin_id=admin) is None


def test_two_callbacks_at_once_get_it_once(app: Any, workspace: Any, make_admin: Any) -> None:
    admin = make_admin(workspace)
    state = oauth_state.begin("books", admin_id=admin, workspace_id=workspace.id)
    barrier = threading.Barrier(4)
    got: list[Any] = []

    def callback() -> None:
        with app.app_context():
            barrier.wait()
            got.append(oauth_state.take("books", state, admin_id=admin))

    threads = [threading.Thread(target=callback) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(got) == 4 and sum(p is not None for p in got) == 1

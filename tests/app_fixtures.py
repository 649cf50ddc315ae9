"""Shared fixtures: a migrated database (SQLite by default, PostgreSQL with TEST_DATABASE_URL),
an app in test mode with the queue running inline, workspaces, and Standard Webhooks signing.

Environment knobs (set by .ci/run for the second pass):
  TEST_DATABASE_URL   e.g. postgresql+psycopg://postgres@127.0.0.1/test
  TEST_REDIS_URL      e.g. redis://127.0.0.1:6379/15 (rate limiter, real-queue tests)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Configure before anything imports connector (the worker builds its queue at import).
os.environ["APP_ENV"] = "test"
os.environ["QUEUE_URL"] = "memory://"
os.environ["WORKER_IMMEDIATE"] = "true"
os.environ.pop("REDIS_URL", None)

from sqlalchemy import text

from connector import create_app, db
from connector import migrate as migrations
from connector.connections.store import forget_local_cache

FIXTURES = Path(__file__).parent / "fixtures"
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _database_url(tmp_path_factory.mktemp("db"))
    engine = db.init_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrations.upgrade()
    return url


def _truncate_all() -> None:
    forget_local_cache()  # this process's copy of the provider read cache
    engine = db.engine()
    tables = [t.name for t in reversed(db.Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def app_overrides(database_url: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "QUEUE_URL": "memory://",
        "WORKER_IMMEDIATE": True,
        "PUBLIC_BASE_URL": "http://invoicer.test",
        "SECRET_KEY": "test-secret-key",
        "JOB_RETRY_BASE_SECONDS": 0.0,
        "WTF_CSRF_ENABLED": True,
        "TESTING": True,
    }
    if TEST_REDIS_URL:
        overrides["REDIS_URL"] = TEST_REDIS_URL
    return overrides


@pytest.fixture
def app(database_url: str) -> Iterator[Any]:
    application = create_app(app_overrides(database_url))
    with application.app_context():
        yield application
    db.session.remove()
    _truncate_all()
    application.extensions["login_throttle"].reset()  # Redis counters outlive the tables


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


# --- workspaces ---------------------------------------------------------------------------------
@dataclass
class WorkspaceHandle:
    id: int
    tracker_workspace_id: str
    endpoint_token: str
    signing_secret: str
    api_token: str

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/webwork/{self.endpoint_token}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


@pytest.fixture
def make_workspace(app: Any) -> Any:
    from connector.connections.store import secret_box
    from connector.workspaces import create_workspace

    def factory(
        *, tracker_workspace_id: str = "4242", auto_invoicing: bool = True, **kw: Any
    ) -> WorkspaceHandle:
        with db.session_scope() as s:
            created = create_workspace(
                s,
                secret_box(app.config),
                name=kw.pop("name", f"Acme {tracker_workspace_id}"),
                tracker_workspace_id=tracker_workspace_id,
                auto_invoicing=auto_invoicing,
                **kw,
            )
            ws = created.workspace
            return WorkspaceHandle(
                id=ws.id,
                tracker_workspace_id=ws.tracker_workspace_id,
                endpoint_token=ws.endpoint_token,
                signing_secret=created.signing_secret,
                api_token=created.api_token,
            )

    return factory


@pytest.fixture
def workspace(make_workspace: Any) -> WorkspaceHandle:
    return make_workspace()


# --- Standard Webhooks signing (independent of the code under test) ---------------------------
def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def load_fixture(*parts: str) -> dict[str, Any]:
    return json.loads((FIXTURES.joinpath(*parts)).read_text())


@pytest.fixture
def post_event(client: Any) -> Any:
    """POST an event dict (or raw bytes) signed for a workspace; returns the response."""

    def send(ws: WorkspaceHandle, event: Any, *, msg_id: str | None = None, **kw: Any) -> Any:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = signed_headers(ws.signing_secret, body, msg_id=msg_id)
        headers.update(kw.pop("headers", {}))
        return client.post(ws.webhook_path, data=body, headers=headers, **kw)

    return send


# --- admin sessions -------------------------------------------------------------------------------
@pytest.fixture
def make_admin(app: Any) -> Any:
    """Create an admin who belongs to the given workspaces; returns its id."""
    from connector.auth import hash_password
    from connector.models import AdminUser, WorkspaceMember

    def factory(
        *workspaces: WorkspaceHandle, email: str = "admin@example.com", password: str = "pw-123456"
    ) -> int:
        with db.session_scope() as s:
            user = AdminUser(email=email, name="Ada Admin", password_hash=hash_password(password))
            s.add(user)
            s.flush()
            for ws in workspaces:
                s.add(WorkspaceMember(workspace_id=ws.id, admin_user_id=user.id))
            return user.id

    return factory


@pytest.fixture
def admin_client(app: Any, workspace: WorkspaceHandle, make_admin: Any) -> Any:
    """A test client signed in as an admin of ``workspace`` (CSRF stays ON: use csrf_token())."""
    from connector.auth import session_user_id
    from connector.models import AdminUser

    user_id = make_admin(workspace)
    test_client = app.test_client()
    with db.new_session() as s, test_client.session_transaction() as sess:
        sess["_user_id"] = session_user_id(s.get(AdminUser, user_id))
        sess["_fresh"] = True
    return test_client


def csrf_token(test_client: Any, path: str = "/") -> str:
    """A valid CSRF token for the client's session (flask-wtf keeps it in the session)."""
    from flask_wtf.csrf import generate_csrf

    with (
        test_client.application.test_request_context(path),
        test_client.session_transaction() as sess,
    ):
        from flask import session as flask_session

        flask_session.update(sess)
        token = generate_csrf()
        sess.update(dict(flask_session))
    return token

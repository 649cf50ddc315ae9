"""Who may do what: admin sessions (flask-login) and workspace API tokens (bearer).

Every admin page and API route goes through one of these guards; ``tests/admin/test_access.py``
walks the URL map to prove that none is left open (the inbound webhook and health routes
excepted).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, request
from flask_login import LoginManager, UserMixin, current_user, login_required
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from connector import db
from connector.crypto import hash_token
from connector.models import AdminUser, ApiToken, Workspace, WorkspaceMember, utcnow
from connector.problems import Problem
from connector.validation import is_ascii_digits, record_id_or_none

F = TypeVar("F", bound=Callable[..., Any])

login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.login_message = "Please sign in to continue."

# Public routes, by endpoint name: everything else requires a session or an API token. A
# provider's setup adds its signed status-event receiver (``allow_public``).
PUBLIC_ENDPOINTS = set(
    {
        "static",
        "admin.static",  # the console stylesheet
        "health.healthz",
        "health.readyz",
        "webhooks.receive",
        "api.openapi",
        "admin.login",
        "metrics.metrics",  # its own bearer token (METRICS_TOKEN); 404 when none is set
    }
)


def allow_public(endpoint: str) -> None:
    """A route that authenticates its callers itself (a signature), not by session or token."""
    PUBLIC_ENDPOINTS.add(endpoint)


class AdminSession(UserMixin):
    def __init__(self, user: AdminUser):
        self.user = user
        self.id = str(user.id)

    @property
    def email(self) -> str:
        return self.user.email

    def get_id(self) -> str:
        # What flask-login keeps in the (client-side, signed) session cookie.
        return session_user_id(self.user)


def session_user_id(user: AdminUser) -> str:
    """``"<admin id>:<session version>"``: a cookie is only good while the version matches."""
    return f"{user.id}:{user.session_version or 0}"


@login_manager.user_loader
def _load_user(session_id: str) -> AdminSession | None:
    user_id, _, version = session_id.partition(":")
    if not (record_id_or_none(user_id) and is_ascii_digits(version) and len(version) < 10):
        return None  # includes sessions from before versions existed: sign in again
    user = db.session.get(AdminUser, record_id_or_none(user_id))
    if user is None or not user.is_active or (user.session_version or 0) != int(version):
        return None
    return AdminSession(user)


def end_all_sessions(user: AdminUser) -> None:
    """Invalidate every session cookie of this admin (sign-out, password change); flushes."""
    user.session_version = (user.session_version or 0) + 1


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # scrypt, salted


def verify_password(user: AdminUser, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def admin_workspace_ids() -> set[int]:
    if not current_user.is_authenticated:
        return set()
    rows = db.session.scalars(
        select(WorkspaceMember.workspace_id).where(
            WorkspaceMember.admin_user_id == int(current_user.id)
        )
    )
    return set(rows)


def workspace_for_admin(workspace_id: int) -> Workspace:
    """The workspace if the signed-in admin belongs to it; 404 otherwise (no existence leak)."""
    if workspace_id not in admin_workspace_ids():
        abort(404)
    workspace = db.session.get(Workspace, workspace_id)
    if workspace is None:
        abort(404)
    return workspace


admin_required = login_required


# --- API tokens ---------------------------------------------------------------------------------
def new_api_token() -> str:
    return "tsi_" + secrets.token_urlsafe(32)


def issue_api_token(s: Any, workspace_id: int, name: str = "default") -> str:
    """Create a token; only its hash is stored, so the caller must show it now."""
    token = new_api_token()
    s.add(
        ApiToken(
            workspace_id=workspace_id, name=name, token_hash=hash_token(token), prefix=token[:10]
        )
    )
    return token


def token_required(view: F) -> F:
    """Bearer token auth for the JSON API: sets ``g.workspace``; 401 problem otherwise."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(
                401,
                "Authentication required",
                "Send 'Authorization: Bearer <api token>'; create a token with "
                "`flask --app connector workspaces token WORKSPACE_ID` or in the admin console.",
                type_="unauthorized",
            )
        row = db.session.scalars(
            select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip()))
        ).one_or_none()
        if row is None or row.revoked_at is not None:
            raise Problem(
                401, "Invalid API token", "The token is unknown or revoked.", type_="unauthorized"
            )
        row.last_used_at = utcnow()
        db.session.commit()
        g.workspace = db.session.get(Workspace, row.workspace_id)
        g.api_token = row
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

"""The OAuth2 ``state`` of a connect flow, kept server-side (table ``oauth_states``).

:func:`begin` stores a random state bound to the provider, the admin and the workspace, valid
``STATE_MAX_AGE_SECONDS``; only its SHA-256 is stored. :func:`take` deletes the row in the same
statement that reads it, so exactly one callback gets it: a second one (a replay with a copy of
the session cookie, a double click, two tabs) finds nothing and never reaches the provider's
token endpoint. Works the same on SQLite and PostgreSQL (``DELETE ... RETURNING``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from connector import db
from connector.models import OAuthState, utcnow

STATE_MAX_AGE_SECONDS = 900  # a consent screen left open longer must start again


@dataclass(frozen=True)
class PendingConnect:
    """A connect flow the callback answers: who started it, for which workspace, and its data."""

    provider: str
    admin_id: int
    workspace_id: int
    data: dict[str, Any] = field(default_factory=dict)


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def begin(
    provider: str,
    *,
    admin_id: int,
    workspace_id: int,
    max_age: float = STATE_MAX_AGE_SECONDS,
    **data: Any,
) -> str:
    """Remember a connect flow being started; returns the ``state`` to send to the provider.

    ``data`` (JSON) comes back at the callback: the environment the flow was started in, a PKCE
    verifier. Expired states of any admin are swept here, so the table stays small.
    """
    state = secrets.token_urlsafe(32)
    now = utcnow()
    with db.session_scope() as s:
        s.execute(delete(OAuthState).where(OAuthState.expires_at < now))
        s.add(
            OAuthState(
                state_hash=_digest(state),
                provider=provider,
                admin_id=admin_id,
                workspace_id=workspace_id,
                data=dict(data),
                created_at=now,
                expires_at=now + timedelta(seconds=max_age),
            )
        )
    return state


def take(provider: str, state: str, *, admin_id: int) -> PendingConnect | None:
    """The connect flow ``state`` belongs to, used up by this call; None when there is none for
    this admin (never started, already used, expired, another provider's or admin's)."""
    if not state or len(state) > 200:
        return None
    with db.session_scope() as s:
        row = s.execute(
            delete(OAuthState)
            .where(
                OAuthState.state_hash == _digest(state),
                OAuthState.provider == provider,
                # Another admin presenting it finds nothing and cannot burn the owner's flow.
                OAuthState.admin_id == admin_id,
            )
            .returning(
                OAuthState.admin_id,
                OAuthState.workspace_id,
                OAuthState.data,
                OAuthState.expires_at,
            )
        ).one_or_none()
    if row is None or row.expires_at <= utcnow():
        return None
    return PendingConnect(provider, row.admin_id, row.workspace_id, dict(row.data or {}))

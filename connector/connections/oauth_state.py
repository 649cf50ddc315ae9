"""OAuth2 authorization-code ``state``, shared by every connect flow (QuickBooks, Stripe Connect,
WebWork).

The state lives in the admin's signed session, bound to that admin and workspace, is used once
(popped whatever happens next) and refused once older than ``STATE_MAX_AGE_SECONDS``: a consent
screen left open longer, or an answer replayed from another browser, must start again.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import request, session
from flask_login import current_user

STATE_MAX_AGE_SECONDS = 900


def begin(session_key: str, workspace_id: int, **extra: Any) -> str:
    """Remember a connection being started; return the ``state`` to send to the provider."""
    state = secrets.token_urlsafe(32)
    session[session_key] = {
        **extra,
        "state": state,
        "workspace_id": workspace_id,
        "user_id": str(current_user.id),
        "created": time.time(),
    }
    return state


def take(session_key: str) -> tuple[dict[str, Any] | None, int | None]:
    """The connection this callback answers, or None when its ``state`` does not match one this
    admin started here in the last ``STATE_MAX_AGE_SECONDS``. Also the workspace id it names, for
    the error page (None when unknown). Either way the pending connection is used up."""
    pending = session.pop(session_key, None)
    if not isinstance(pending, dict):
        return None, None
    workspace_id = pending.get("workspace_id")
    workspace_id = workspace_id if isinstance(workspace_id, int) else None
    state = request.args.get("state", "")
    if (
        not state
        or not secrets.compare_digest(str(pending.get("state", "")), state)
        or pending.get("user_id") != str(current_user.id)
        or time.time() - float(pending.get("created", 0)) > STATE_MAX_AGE_SECONDS
    ):
        return None, workspace_id
    return pending, workspace_id

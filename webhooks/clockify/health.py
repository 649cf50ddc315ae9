"""When Clockify refuses the workspace's API key: hold the connection and say "Reconnect Clockify".

The client confirms a 401 before anything here runs. A confirmed refusal (a second 401: the
key was revoked or regenerated; a 403: the user is no longer an Owner or Admin) holds the
connection (status ``reconnect_needed``, the reason on the Connections page and in the log);
approvals that need Clockify wait, nothing is dropped. The poll re-checks a held key on a slow
schedule and resumes by itself when Clockify accepts it again; reconnecting resumes at once.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from connector import db, worker
from connector.models import Connection, ConnectionStatus, utcnow
from webhooks.clockify.client import ClockifyError
from webhooks.clockify.connection import PROVIDER, WAIT_RECONNECT, client_for, store_for

log = logging.getLogger(__name__)

RECHECK_SECONDS = 900.0


def hold(workspace_id: int, reason: str) -> None:
    store = store_for(workspace_id)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return
    if row.status != ConnectionStatus.RECONNECT_NEEDED:
        log.warning("Clockify refused workspace %s's API key: %s", workspace_id, reason)
    message = f"Reconnect Clockify: {reason}"
    store.mark_reconnect_needed(message)
    store.update_meta(last_error=message, held_at=utcnow().isoformat())


def _mark_connected(workspace_id: int) -> bool:
    """Held -> connected (only from held: a disconnect meanwhile wins)."""
    with db.session_scope() as s:
        row = s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == PROVIDER
            )
        ).one_or_none()
        if row is None or row.status != ConnectionStatus.RECONNECT_NEEDED:
            return False
        row.status = ConnectionStatus.CONNECTED
        row.last_error = None
        return True


def recheck(workspace_id: int) -> bool:
    """One cheap call with the held key; True (and the waiting jobs woken) when it works."""
    store = store_for(workspace_id)
    try:
        client_for(workspace_id, allow_held=True, max_attempts=2).workspace()
    except ClockifyError as exc:
        store.update_meta(last_check_at=utcnow().isoformat(), last_check_error=exc.message)
        return False
    if not _mark_connected(workspace_id):
        return False
    store.update_meta(last_error=None, held_at=None, last_check_error=None)
    worker.resume_waiting(workspace_id, WAIT_RECONNECT)
    return True

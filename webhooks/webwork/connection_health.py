"""When WebWork stops answering a connection's token: hold it, say so, and try again by itself.

A 401 is confirmed by the client before anything here runs (asked again after a short
backoff). A confirmed refusal (a second 401, ``invalid_grant`` on refresh, or 403: the user is
no longer an Owner or Executive manager) *holds* the connection: its status becomes
``reconnect_needed``, a WARNING names the workspace and the reason, the Connections page says
when polling stopped and why, and ``tsi_tracker_connections{status}`` counts it.

Nothing parks for good: the poll job keeps running on a slow schedule (``RECHECK_SECONDS``),
and each run of a held connection first spends one cheap call (``GET /workspaces``) to check
the token. When it works again the connection resumes by itself: status ``connected``, the
jobs that waited for it are woken, and the poll runs. Reconnecting by hand does the same at once.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from connector import db, worker
from connector.models import Connection, ConnectionStatus, utcnow
from webhooks.webwork.client import WebWorkError
from webhooks.webwork.connection import WAIT_RECONNECT, WAIT_TRACKER_DATA, client_for
from webhooks.webwork.polls import schedule_poll
from webhooks.webwork.store import PROVIDER, store_for

log = logging.getLogger(__name__)

# How often a held connection checks its token again: one request every 15 minutes.
RECHECK_SECONDS = 900.0


def hold(workspace_id: int, reason: str) -> None:
    """WebWork refused the connection (confirmed): stop polling, say so, re-check later."""
    store = store_for(workspace_id)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return  # removed: nothing to hold or re-check
    now = utcnow()
    meta = dict(row.meta or {})
    if row.status != ConnectionStatus.RECONNECT_NEEDED or not meta.get("held_at"):
        log.warning(
            "WebWork polling of workspace %s stopped: %s Checking the token again every %d "
            "minutes; reconnecting WebWork resumes it at once.",
            workspace_id,
            reason,
            RECHECK_SECONDS // 60,
        )
        store.update_meta(held_at=now.isoformat())
    store.mark_reconnect_needed(reason)
    store.update_meta(held_reason=reason, last_error=reason, last_check_at=now.isoformat())
    schedule_poll(workspace_id, delay_seconds=RECHECK_SECONDS)


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


def recheck(workspace_id: int, **client_kwargs: Any) -> bool:
    """One cheap call with the held connection's token; resumes it when WebWork accepts it."""
    store = store_for(workspace_id)
    try:
        client = client_for(workspace_id, allow_held=True, **client_kwargs)
        workspaces = client.list_workspaces()
    except WebWorkError as exc:
        store.update_meta(last_check_at=utcnow().isoformat(), last_check_error=exc.message)
        return False
    wanted = store.account_id
    if wanted and not any(str(w.get("id")) == str(wanted) for w in workspaces):
        store.update_meta(
            last_check_at=utcnow().isoformat(),
            last_check_error=f"the connected user no longer sees WebWork workspace {wanted}",
        )
        return False
    if not _mark_connected(workspace_id):
        return False
    held_at = store.meta().get("held_at")
    store.update_meta(
        held_at=None,
        held_reason=None,
        last_error=None,
        last_check_error=None,
        resumed_at=utcnow().isoformat(),
    )
    log.warning(
        "WebWork polling of workspace %s resumed: WebWork accepts the token again (held since %s)",
        workspace_id,
        held_at,
    )
    resume_waiting(workspace_id)
    return True


def resume_waiting(workspace_id: int) -> int:
    """Wake the jobs that waited for this connection (thin events, held approvals)."""
    return worker.resume_waiting(workspace_id, WAIT_RECONNECT) + worker.resume_waiting(
        workspace_id, WAIT_TRACKER_DATA
    )

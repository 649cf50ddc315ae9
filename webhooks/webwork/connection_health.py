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

from typing import Any

from connector import worker
from connector.models import utcnow
from webhooks import polling
from webhooks.webwork import SOURCE
from webhooks.webwork.client import TrackerError
from webhooks.webwork.connection import WAIT_RECONNECT, WAIT_TRACKER_DATA, client_for
from webhooks.webwork.store import store_for

# How often a held connection checks its token again: one request every 15 minutes.
RECHECK_SECONDS = 900.0


def hold(workspace_id: int, reason: str) -> None:
    """WebWork refused the connection (confirmed): stop polling, say so, re-check later."""
    polling.hold(SOURCE, workspace_id, reason)


def recheck(workspace_id: int, **client_kwargs: Any) -> bool:
    """One cheap call with the held connection's token; resumes it when WebWork accepts it."""
    store = store_for(workspace_id)
    try:
        client = client_for(workspace_id, allow_held=True, **client_kwargs)
        workspaces = client.list_workspaces()
    except TrackerError as exc:
        store.update_meta(last_check_at=utcnow().isoformat(), last_check_error=exc.message)
        return False
    wanted = store.account_id
    if wanted and not any(str(w.get("id")) == str(wanted) for w in workspaces):
        store.update_meta(
            last_check_at=utcnow().isoformat(),
            last_check_error=f"the connected user no longer sees WebWork workspace {wanted}",
        )
        return False
    if not polling.resume(SOURCE, workspace_id):
        return False
    resume_waiting(workspace_id)
    return True


def resume_waiting(workspace_id: int) -> int:
    """Wake the jobs that waited for this connection (thin events, held approvals)."""
    return worker.resume_waiting(workspace_id, WAIT_RECONNECT) + worker.resume_waiting(
        workspace_id, WAIT_TRACKER_DATA
    )

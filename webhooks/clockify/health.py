"""When Clockify refuses the workspace's API key: hold the connection and say "Reconnect Clockify".

The client confirms a 401 before anything here runs. A confirmed refusal (a second 401: the
key was revoked or regenerated; a 403: the user is no longer an Owner or Admin) holds the
connection (status ``reconnect_needed``, the reason on the Connections page and in the log);
approvals that need Clockify wait, nothing is dropped. The poll re-checks a held key on a slow
schedule and resumes by itself when Clockify accepts it again; reconnecting resumes at once.
"""

from __future__ import annotations

from connector.models import utcnow
from webhooks import polling
from webhooks.clockify import SOURCE
from webhooks.clockify.client import TrackerError
from webhooks.clockify.connection import client_for, store_for

RECHECK_SECONDS = 900.0


def reconnect_words(reason: str) -> str:
    return reason if reason.startswith("Reconnect Clockify") else f"Reconnect Clockify: {reason}"


def hold(workspace_id: int, reason: str) -> None:
    """Clockify refused the key (confirmed): hold the connection, in words that say the fix."""
    polling.hold(SOURCE, workspace_id, reconnect_words(reason))


def recheck(workspace_id: int) -> bool:
    """One cheap call with the held key; True (resumed, waiting jobs woken) when it works."""
    try:
        client_for(workspace_id, allow_held=True, max_attempts=2).workspace()
    except TrackerError as exc:
        store_for(workspace_id).update_meta(
            last_check_at=utcnow().isoformat(), last_check_error=exc.message
        )
        return False
    return polling.resume(SOURCE, workspace_id)

"""The Clockify account's API key, webhook tokens and poll state, in the shared credential store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.connections.store import DbCredentialStore
from webhooks import polling
from webhooks.clockify import SOURCE

PROVIDER = SOURCE  # the connection row's provider name
# Jobs parked until an admin reconnects Clockify (a revoked key): woken by the reconnect.
WAIT_RECONNECT = "clockify_reconnect"
# Approvals Clockify no longer shows as approved: the next poll settles them.
WAIT_TRACKER_DATA = "tracker_data"


def store_for(workspace_id: int, config: Mapping[str, Any] | None = None) -> DbCredentialStore:
    """The workspace's Clockify connection; ``config``: the app's (default: the current app's)."""
    return polling.store_for(SOURCE, workspace_id, config)

"""The WebWork account's tokens and poll state, in the shared credential store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from connector.connections.store import DbCredentialStore, secret_box
from webhooks.webwork import SOURCE

PROVIDER = SOURCE  # the connection row's provider name


def store_for(workspace_id: int, config: Mapping[str, Any] | None = None) -> DbCredentialStore:
    """The workspace's WebWork connection; ``config``: the app's (default: the current app's)."""
    return DbCredentialStore(
        workspace_id, PROVIDER, secret_box(current_app.config if config is None else config)
    )

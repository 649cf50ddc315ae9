"""A workspace's Clockify account: its API key and the webhooks registered with it, encrypted.

Stored in the shared credential store (``connector.connections.store``) under provider
``clockify``: ``credentials`` (encrypted) hold the API key and each registered webhook's id and
token; ``meta`` what the console shows (who connected, the masked key, the workspace's name).

Connecting (``trackers.connect_account``: ``connect_token`` then the ``on_connect`` hook)
checks the key with Clockify (the user, the workspace) and stores it, then registers ONE webhook
for the workspace's approval status changes at our receiver's address, replacing any webhook
this connector registered before (a reconnect never leaves two that would deliver everything
twice). Disconnecting removes it from Clockify (``on_disconnect``), then forgets the key.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app

from connector import db, trackers
from connector.models import ConnectionStatus, Workspace
from connector.workspaces import webhook_url
from webhooks import polling
from webhooks.clockify import SOURCE
from webhooks.clockify.client import (
    ClockifyClient,
    Forbidden,
    NotFound,
    ReconnectRequired,
    TrackerError,
    Unavailable,
    settings_from_config,
)
from webhooks.clockify.store import PROVIDER, WAIT_RECONNECT, store_for

__all__ = ["PROVIDER", "WAIT_RECONNECT", "ConnectError", "client_for", "store_for"]

log = logging.getLogger(__name__)

WEBHOOK_NAME = "Timesheet invoicer: approvals"
# Clockify's documentation names the header Clockify-Signature; some of its pages say
# Clockify-Signature-Token. Either is accepted (docs/clockify.md).
TOKEN_HEADERS = ("Clockify-Signature", "Clockify-Signature-Token")


ConnectError = trackers.ConnectRefused  # plain words for the admin (console and CLI)


def mask_key(key: str) -> str:
    return f"{key[:4]}…{key[-4:]}" if len(key) > 12 else "…"


def client_for(
    workspace_id: int,
    config: Mapping[str, Any] | None = None,
    *,
    allow_held: bool = False,
    **kwargs: Any,
) -> ClockifyClient:
    """A client for the workspace's Clockify connection; ReconnectRequired when there is none
    (or it is held for reconnecting, unless ``allow_held``: the re-check of a held one)."""
    config = current_app.config if config is None else config
    store = store_for(workspace_id, config)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        raise ReconnectRequired("Clockify is not connected for this workspace.")
    if row.status == ConnectionStatus.RECONNECT_NEEDED and not allow_held:
        raise ReconnectRequired(row.last_error or "Reconnect Clockify.")
    key = str(store.load().get("api_key") or "")
    if not key or not row.account_id:
        raise ReconnectRequired("Clockify is not connected for this workspace.")
    return ClockifyClient(settings_from_config(config), key, workspace_id=row.account_id, **kwargs)


def validate(client: ClockifyClient) -> dict[str, Any]:
    """Two calls proving the key works and its user is in the workspace; the meta to store."""
    try:
        user = client.current_user()
        workspace = client.workspace()
    except ReconnectRequired:
        raise ConnectError(
            "Clockify did not accept this API key (wrong, regenerated or deleted). Copy the "
            "key from Clockify (Profile settings > API) and paste it again."
        ) from None
    except NotFound:
        raise ConnectError(
            f"This API key's user is not a member of Clockify workspace {client.workspace_id}, "
            "the workspace this connector workspace receives approvals for. Use the key of an "
            "Owner or Admin of that workspace (its id is in Clockify's address bar: "
            "app.clockify.me/workspaces/<id>/settings)."
        ) from None
    except (Forbidden, Unavailable) as exc:
        raise ConnectError(f"Clockify could not be used to check the key: {exc.message}") from None
    except TrackerError as exc:
        raise ConnectError(f"Clockify's answer could not be used: {exc.message}") from None
    name, email = user.get("name"), user.get("email")
    return {
        "clockify_workspace_id": client.workspace_id,
        "clockify_workspace_name": str(workspace.get("name") or client.workspace_id),
        "connected_as": f"{name} <{email}>" if name and email else str(name or email or "?"),
        "user_id": str(user.get("id") or ""),
    }


def register_webhook(
    client: ClockifyClient, url: str, previous: list[dict[str, Any]]
) -> dict[str, str]:
    """One webhook for approval status changes at ``url``; ours from before are removed first."""
    ours = {str(h.get("id")) for h in previous}
    try:
        for hook in client.webhooks():
            if str(hook.get("id")) in ours or hook.get("url") == url:
                client.delete_webhook(str(hook["id"]))
        created = client.create_webhook(url, WEBHOOK_NAME)
    except Forbidden as exc:
        raise ConnectError(exc.message) from None
    except TrackerError as exc:
        raise ConnectError(
            f"Clockify did not register the approval webhook at {url}: {exc.message} "
            "(Clockify must reach this address: PUBLIC_BASE_URL must be the service's public "
            "https:// address; a free workspace has at most 3 webhooks)."
        ) from None
    return {"id": str(created["id"]), "token": str(created["authToken"])}


def _workspace(workspace_id: int) -> Workspace:
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        if workspace is None:
            raise ConnectError(f"There is no workspace {workspace_id}.")
        s.expunge(workspace)
        return workspace


def connect_token(
    workspace_id: int,
    api_key: str,
    connected_by: str,
    *,
    config: Mapping[str, Any] | None = None,
    **client_kwargs: Any,
) -> str:
    """Check the key with Clockify and store it encrypted (its webhook comes next: on_connect)."""
    config = current_app.config if config is None else config
    api_key = api_key.strip()
    if not api_key or any(c.isspace() for c in api_key):
        raise ConnectError("Paste the whole Clockify API key (one line, no spaces).")
    tracker_workspace_id = _workspace(workspace_id).tracker_workspace_id
    client = ClockifyClient(
        settings_from_config(config),
        api_key,
        workspace_id=tracker_workspace_id,
        max_attempts=2,
        **client_kwargs,
    )
    meta = validate(client)
    store = store_for(workspace_id, config)
    previous = list(store.load().get("webhooks") or [])  # a reconnect replaces them
    meta.update(masked_key=mask_key(api_key), connected_by=connected_by, last_error=None)
    store.connect(
        {"api_key": api_key, "webhooks": previous},
        account_id=tracker_workspace_id,
        environment=None,
        account_name=meta["connected_as"],
        meta=meta,
    )
    polling.wake(SOURCE, workspace_id)  # approvals that waited for a reconnect go on
    polling.schedule_poll(SOURCE, workspace_id, delay_seconds=0.0)
    return (
        f"Clockify connected for workspace {workspace_id} as {meta['connected_as']} "
        f"(key {meta['masked_key']}, Clockify workspace {meta['clockify_workspace_name']})."
    )


def register_webhooks(workspace_id: int) -> None:
    """on_connect: one approval webhook at this workspace's receiver address, its token kept
    encrypted beside the key. Raises ConnectError (the connection is then undone)."""
    store = store_for(workspace_id)
    credentials = store.load()
    url = webhook_url(current_app.config["PUBLIC_BASE_URL"], _workspace(workspace_id))
    hook = register_webhook(client_for(workspace_id), url, list(credentials.get("webhooks") or []))
    store.save({**credentials, "webhooks": [hook]})
    store.update_meta(webhook_id=hook["id"], webhook_url=url)


def remove_webhooks(workspace_id: int) -> None:
    """on_disconnect: remove our webhooks from Clockify (raises when Clockify cannot be told;
    the core logs it and disconnects anyway: the webhook's deliveries then answer 401)."""
    store = store_for(workspace_id)
    hooks = list(store.load().get("webhooks") or [])
    try:
        client = client_for(workspace_id, allow_held=True, max_attempts=2)
        for hook in hooks:
            client.delete_webhook(str(hook["id"]))
    except TrackerError as exc:
        raise ConnectError(
            f"Clockify could not remove the approval webhook ({exc.message}); its deliveries "
            "are refused here from now on. Delete it in Clockify (Settings > Webhooks)."
        ) from None
    store.save({**store.load(), "webhooks": []})


def disconnect(workspace_id: int) -> bool:
    """Forget the key and the webhook tokens; polls stop. False when nothing was connected."""
    store = store_for(workspace_id)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return False
    store.disconnect()
    polling.cancel_polls(SOURCE, workspace_id)
    return True


def delivery_authentic(workspace_id: int, headers: Mapping[str, str]) -> bool:
    """Does the delivery carry the token of a webhook we registered? Constant-time compare;
    a missing header, an unconnected workspace or a removed webhook are all "no"."""
    wanted = {name.lower() for name in TOKEN_HEADERS}
    sent = [str(v) for k, v in headers.items() if k.lower() in wanted and v]
    if not sent:
        return False
    row = store_for(workspace_id).connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return False
    known = [
        str(h.get("token") or "") for h in store_for(workspace_id).load().get("webhooks") or []
    ]
    found = False
    for token in sent:
        for expected in known:
            # Compare every pair (no early exit): the time taken says nothing about the tokens.
            found |= bool(expected) and hmac.compare_digest(token.encode(), expected.encode())
    return found

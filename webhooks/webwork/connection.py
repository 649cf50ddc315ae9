"""A workspace's WebWork account: OAuth2 tokens or a personal access token, stored encrypted.

Stored with the accounting credentials' store (``connector.connections.store``) under provider
``webwork``: ``credentials`` holds the tokens (encrypted), ``meta`` what the console shows
(masked token, who connected, the WebWork user the limiter counts against, poll status).

OAuth is the shared client (:mod:`connector.oauth`): one refresh at a time per workspace across
every process (the store's advisory lock), re-read under the lock, the rotated refresh token
saved BEFORE the new access token is used; ``invalid_grant`` puts the connection on "reconnect
WebWork" and the jobs wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from connector import trackers, worker
from connector.connections.store import DbCredentialStore
from connector.models import ConnectionStatus
from connector.oauth import client as oauth
from connector.oauth.client import OAuthApp
from connector.oauth.tokens import RefreshingToken
from webhooks.webwork.client import (
    BadResponse,
    Forbidden,
    ReconnectRequired,
    StaticToken,
    TrackerError,
    Unavailable,
    WebWorkClient,
    WebWorkSettings,
    settings_from_config,
    token_claims,
    user_key_for_token,
)
from webhooks.webwork.names import person_name, workspace_name
from webhooks.webwork.polls import cancel_polls, schedule_poll
from webhooks.webwork.store import store_for

SCOPE = "read"
REFRESH_MARGIN_SECONDS = 3600.0  # access tokens live 15 days: refresh an hour early
# Jobs parked because WebWork must be reconnected, and thin events waiting for rows.
WAIT_RECONNECT = "webwork_reconnect"
WAIT_TRACKER_DATA = "tracker_data"


class ConnectError(trackers.ConnectRefused):
    """Connecting was refused; ``message`` says why in plain words and how to fix it."""


def mask_token(token: str) -> str:
    return f"{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


# --- OAuth2 authorization code (the shared client: connector.oauth) ----------
OAuthError = oauth.OAuthError


def oauth_app(settings: WebWorkSettings) -> OAuthApp:
    """WebWork's OAuth app: client credentials in the form body, scopes sent again on refresh,
    15-day access and 30-day refresh tokens, no revoke endpoint (disconnect forgets the tokens)."""
    return OAuthApp(
        label="WebWork",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        authorize_url=settings.authorize_url,
        token_url=settings.token_url,
        scopes=(SCOPE,),
        client_auth="client_secret_post",
        refresh_scope=True,
        default_expires_in=15 * 86400.0,
        refresh_lifetime=30 * 86400.0,
        read_timeout=settings.read_timeout,
    )


def authorize_url(settings: WebWorkSettings, *, redirect_uri: str, state: str) -> str:
    return oauth.authorize_url(oauth_app(settings), redirect_uri=redirect_uri, state=state)


def exchange_code(settings: WebWorkSettings, *, code: str, redirect_uri: str) -> dict[str, Any]:
    credentials = oauth.exchange_code(oauth_app(settings), code=code, redirect_uri=redirect_uri)
    return {"kind": "oauth", **credentials}


def oauth_tokens(settings: WebWorkSettings, store: DbCredentialStore) -> RefreshingToken:
    """OAuth access tokens of one workspace's connection, refreshed single-flight."""
    return RefreshingToken(
        oauth_app(settings),
        store,
        refresh_margin=REFRESH_MARGIN_SECONDS,
        reconnect=ReconnectRequired,
        retry_later=lambda message, wait: Unavailable(message, retry_after=wait),
    )


# --- building a client for a workspace ----------
def client_for(
    workspace_id: int,
    config: Mapping[str, Any] | None = None,
    *,
    allow_held: bool = False,
    **kwargs: Any,
) -> WebWorkClient:
    """A client for the workspace's WebWork connection; ReconnectRequired when there is none
    (or it is held for reconnecting, unless ``allow_held``: the re-check of a held one)."""
    config = current_app.config if config is None else config
    settings = settings_from_config(config)
    store = store_for(workspace_id, config)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        raise ReconnectRequired("WebWork is not connected for this workspace.")
    if row.status == ConnectionStatus.RECONNECT_NEEDED and not allow_held:
        raise ReconnectRequired(row.last_error or "WebWork must be reconnected.")
    creds = store.load()
    token = str(creds.get("access_token") or "")
    if not token:
        raise ReconnectRequired("WebWork is not connected for this workspace.")
    meta = dict(row.meta or {})
    tokens: Any = (
        oauth_tokens(settings, store) if creds.get("kind") == "oauth" else StaticToken(token)
    )
    return WebWorkClient(
        settings,
        tokens,
        user_key=str(meta.get("user_key") or user_key_for_token(token)),
        **kwargs,
    )


def _connected_as(
    client: WebWorkClient, token: str, workspace: Mapping[str, Any], workspace_id: str
) -> str:
    """ "Firstname Lastname <email>" of the token's user: from the workspace entry or the token's
    claims, else (best effort, one request) from WebWork's member list."""
    claims = token_claims(token)
    person: Mapping[str, Any] | None = None
    for source in (workspace.get("user"), workspace.get("member"), claims):
        if isinstance(source, Mapping) and person_name(source):
            person = source
            break
    user_id = workspace.get("user_id") or claims.get("sub")
    if (person is None or not _has_name(person)) and user_id not in (None, ""):
        try:
            members = client.members(workspace_id, user_id=user_id)
        except TrackerError:
            members = []
        found = next((m for m in members if str(m.get("id")) == str(user_id)), None)
        if found is not None and person_name(found):
            person = found
    if person is not None:
        name, email = person_name(person), person.get("email")
        if name and email and name != email:
            return f"{name} <{email}>"
        return str(name or email)
    return f"WebWork user {user_id}" if user_id not in (None, "") else "a WebWork user"


def _has_name(person: Mapping[str, Any]) -> bool:
    """A name beside the email (an email alone is a last resort)."""
    return person_name(person) not in (None, person.get("email"))


def validate(
    settings: WebWorkSettings, token: str, tracker_workspace_id: str, **client_kwargs: Any
) -> dict[str, Any]:
    """ONE API call (``GET /workspaces``) proving the token works and sees this workspace.

    Returns the meta to store; raises ConnectError in plain words otherwise.
    """
    client = WebWorkClient(
        settings,
        StaticToken(token),
        user_key=user_key_for_token(token),
        max_attempts=1,
        **client_kwargs,
    )
    try:
        workspaces = client.list_workspaces()
    except ReconnectRequired:
        raise ConnectError(
            "WebWork did not accept this token (wrong, expired or revoked). Create a new "
            "personal access token in WebWork and paste it again."
        ) from None
    except Forbidden as exc:
        raise ConnectError(exc.message) from None
    except Unavailable as exc:
        raise ConnectError(
            f"WebWork could not be reached to check the token: {exc.message}"
        ) from None
    except (BadResponse, TrackerError) as exc:
        raise ConnectError(f"WebWork's answer could not be used: {exc.message}") from None
    wanted = str(tracker_workspace_id)
    match = next((w for w in workspaces if str(w.get("id")) == wanted), None)
    if match is None:
        seen = ", ".join(f"{w.get('id')} ({workspace_name(w)})" for w in workspaces[:5]) or "none"
        raise ConnectError(
            f"This WebWork account cannot see workspace {wanted}, the tracker workspace this "
            f"connector workspace receives approvals for (it sees: {seen}). Connect the account "
            f"of an Owner or Executive manager of WebWork workspace {wanted}."
        )
    return {
        "webwork_workspace_id": wanted,
        "webwork_workspace_name": workspace_name(match),
        "connected_as": _connected_as(client, token, match, wanted),
        "user_key": user_key_for_token(token),
        "masked_key": mask_token(token),
    }


def connect_with_token(
    workspace_id: int,
    tracker_workspace_id: str,
    token: str,
    *,
    connected_by: str,
    config: Mapping[str, Any] | None = None,
    **client_kwargs: Any,
) -> dict[str, Any]:
    """Validate a personal access token with one call, then store it encrypted."""
    config = current_app.config if config is None else config
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise ConnectError("Paste the whole personal access token (one line, no spaces).")
    meta = validate(settings_from_config(config), token, tracker_workspace_id, **client_kwargs)
    meta.update(kind="personal_access_token", connected_by=connected_by)
    _save(workspace_id, {"kind": "pat", "access_token": token}, meta, config)
    return meta


def connect_with_oauth(
    workspace_id: int,
    tracker_workspace_id: str,
    credentials: dict[str, Any],
    *,
    connected_by: str,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    config = current_app.config if config is None else config
    meta = validate(
        settings_from_config(config), str(credentials["access_token"]), tracker_workspace_id
    )
    meta.pop("masked_key", None)
    meta.update(kind="oauth", connected_by=connected_by)
    _save(workspace_id, credentials, meta, config)
    return meta


def _save(
    workspace_id: int, credentials: dict[str, Any], meta: dict[str, Any], config: Mapping[str, Any]
) -> None:
    store = store_for(workspace_id, config)
    previous = store.meta()
    # Poll history survives a reconnect of the same WebWork workspace.
    for name in ("last_poll_at", "last_success_at", "timesheets_seen", "rates_visible"):
        if (
            name in previous
            and previous.get("webwork_workspace_id") == meta["webwork_workspace_id"]
        ):
            meta.setdefault(name, previous[name])
    meta["last_error"] = None
    store.connect(
        credentials,
        account_id=meta["webwork_workspace_id"],
        environment=None,
        account_name=meta.get("connected_as"),
        meta=meta,
    )

    worker.resume_waiting(workspace_id, WAIT_RECONNECT)
    worker.resume_waiting(workspace_id, WAIT_TRACKER_DATA)
    schedule_poll(workspace_id, delay_seconds=0.0)


def disconnect(workspace_id: int, config: Mapping[str, Any] | None = None) -> bool:
    """Forget the tokens; pending polls stop. Returns False when nothing was connected."""
    store = store_for(workspace_id, config)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return False
    store.disconnect()

    cancel_polls(workspace_id)
    return True

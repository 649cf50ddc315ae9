"""A workspace's WebWork account: OAuth2 tokens or a personal access token, stored encrypted.

Stored with the accounting credentials' store (``connector.connections.store``) under provider
``webwork``: ``credentials`` holds the tokens (encrypted), ``meta`` what the console shows
(masked token, who connected, the WebWork user the limiter counts against, poll status).

OAuth refresh follows the QuickBooks pattern: one refresh at a time per workspace across every
process (the store's advisory lock), re-read under the lock, the rotated refresh token saved
BEFORE the new access token is used; ``invalid_grant`` puts the connection on "reconnect
WebWork" and the jobs wait.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from flask import current_app

from connector import worker
from connector.connections.store import DbCredentialStore
from connector.models import ConnectionStatus
from webhooks.webwork.client import (
    BadResponse,
    Forbidden,
    ReconnectRequired,
    StaticToken,
    Unavailable,
    WebWorkClient,
    WebWorkError,
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


class ConnectError(Exception):
    """Connecting was refused; ``message`` says why in plain words and how to fix it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def mask_token(token: str) -> str:
    return f"{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


# --- OAuth2 authorization code ----------
class OAuthError(Exception):
    def __init__(self, message: str, *, permanent: bool, error: str | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.error = error


def authorize_url(settings: WebWorkSettings, *, redirect_uri: str, state: str) -> str:
    query = urlencode(
        {
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": SCOPE,
            "state": state,
        }
    )
    return f"{settings.authorize_url}?{query}"


def _token_request(settings: WebWorkSettings, data: dict[str, str]) -> dict[str, Any]:
    try:
        response = requests.post(
            settings.token_url,
            data={**data, "client_id": settings.client_id, "client_secret": settings.client_secret},
            headers={"Accept": "application/json"},
            timeout=settings.timeout,
        )
        body: Any = response.json()
    except requests.RequestException as exc:
        raise OAuthError(
            f"WebWork's token endpoint could not be reached ({type(exc).__name__}).",
            permanent=False,
        ) from None
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and body.get("access_token"):
        return body
    error = str(body.get("error") or "")
    description = str(body.get("error_description") or body.get("message") or "")
    if error in ("invalid_grant", "invalid_client", "unauthorized_client", "invalid_request"):
        raise OAuthError(
            f"WebWork refused the token request: {error}"
            + (f" ({description})" if description else ""),
            permanent=True,
            error=error,
        )
    raise OAuthError(
        f"WebWork's token endpoint answered HTTP {response.status_code}.",
        permanent=400 <= response.status_code < 500 and response.status_code != 429,
        error=error or None,
    )


def _credentials(body: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    creds: dict[str, Any] = {
        "kind": "oauth",
        "access_token": str(body["access_token"]),
        "expires_at": now + float(body.get("expires_in") or 15 * 86400),
    }
    if body.get("refresh_token"):
        creds["refresh_token"] = str(body["refresh_token"])
        creds["refresh_expires_at"] = now + 30 * 86400
    return creds


def exchange_code(settings: WebWorkSettings, *, code: str, redirect_uri: str) -> dict[str, Any]:
    body = _token_request(
        settings,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
    )
    return _credentials(body)


def refresh(settings: WebWorkSettings, refresh_token: str) -> dict[str, Any]:
    body = _token_request(
        settings, {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": SCOPE}
    )
    return _credentials(body)


class OAuthTokens:
    """OAuth access tokens of one workspace's connection, refreshed single-flight."""

    def __init__(self, settings: WebWorkSettings, store: DbCredentialStore, clock: Any = time.time):
        self.settings = settings
        self.store = store
        self._clock = clock
        self._credentials: dict[str, Any] | None = None

    def _fresh_enough(self, creds: Mapping[str, Any]) -> bool:
        expires_at = float(creds.get("expires_at") or 0)
        return bool(creds.get("access_token")) and (
            expires_at - self._clock() > REFRESH_MARGIN_SECONDS
        )

    def _reconnect(self, reason: str) -> ReconnectRequired:
        self.store.mark_reconnect_needed(reason)
        return ReconnectRequired(reason)

    def access_token(self, *, rejected_token: str | None = None) -> str:
        creds = self._credentials
        if creds is None:
            creds = self._credentials = self.store.load()
        if rejected_token is None and creds and self._fresh_enough(creds):
            return str(creds["access_token"])
        try:
            with self.store.lock("token-refresh"):
                creds = self.store.load()  # another process may have refreshed meanwhile
                if not creds.get("refresh_token"):
                    raise self._reconnect("WebWork is not connected: reconnect WebWork.")
                already_new = rejected_token is not None and creds.get("access_token") not in (
                    None,
                    rejected_token,
                )
                if already_new or (rejected_token is None and self._fresh_enough(creds)):
                    self._credentials = creds
                    return str(creds["access_token"])
                try:
                    new = refresh(self.settings, str(creds["refresh_token"]))
                except OAuthError as exc:
                    if exc.permanent:
                        raise self._reconnect(
                            "WebWork refused to renew access (the sign-in expired or was "
                            f"revoked): reconnect WebWork. {exc.message}"
                        ) from None
                    raise Unavailable(exc.message) from None
                merged = {**creds, **new}
                self.store.save(merged)  # durable BEFORE use: the old refresh token is spent
                self._credentials = merged
                return str(merged["access_token"])
        except TimeoutError:
            raise Unavailable("Waiting for another WebWork token refresh.") from None


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
        OAuthTokens(settings, store) if creds.get("kind") == "oauth" else StaticToken(token)
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
        except WebWorkError:
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
    except (BadResponse, WebWorkError) as exc:
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

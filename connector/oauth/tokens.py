"""A connection's access token, refreshed one process at a time and stored before it is used.

Refresh tokens rotate (Intuit may on any refresh, Xero on every one): two processes refreshing
with the same refresh token at once would leave one of them, and then the connection, locked out.
So :class:`RefreshingToken`

* answers from the stored credentials while the access token has more than ``refresh_margin``
  seconds left;
* otherwise takes the store's cross-process lock (``store.lock("token-refresh")``, an advisory
  lock in the database), re-reads the credentials under it (another process may have refreshed
  meanwhile) and refreshes only if they are still stale;
* saves the new credentials BEFORE the new access token is used: the old refresh token may
  already be dead at the provider;
* turns a permanent refusal (``invalid_grant``) into "reconnect needed" on the connection, and a
  transient one into the caller's retry-later error.

The errors it raises are the caller's own (``reconnect``/``retry_later`` factories), so a provider
raises its ``ReconnectNeeded``/``RetryLater`` and a tracker its ``ReconnectRequired``/
``Unavailable``: no OAuth exception leaves an adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from connector.oauth import client
from connector.oauth.client import OAuthApp, OAuthError

LOCK_NAME = "token-refresh"


class TokenStore(Protocol):
    """What the refresher needs of a credential store (``connections.store.DbCredentialStore``)."""

    def load(self) -> dict[str, Any]: ...

    def save(self, credentials: dict[str, Any]) -> None: ...

    def lock(self, name: str, timeout: float = 30.0) -> AbstractContextManager[None]: ...

    def mark_reconnect_needed(self, reason: str) -> None: ...


class RefreshingToken:
    """The access token of one connection (one workspace's grant at one provider)."""

    def __init__(
        self,
        app: OAuthApp,
        store: TokenStore,
        *,
        refresh_margin: float,
        reconnect: Callable[[str], Exception],
        retry_later: Callable[[str, float | None], Exception],
        clock: Callable[[], float] = time.time,
        refresh: Callable[[OAuthApp, str], dict[str, Any]] = client.refresh,
    ):
        self.app = app
        self.store = store
        self.refresh_margin = refresh_margin
        self._reconnect = reconnect
        self._retry_later = retry_later
        self._clock = clock
        self._refresh = refresh
        self._credentials: dict[str, Any] | None = None

    def fresh_enough(self, credentials: Mapping[str, Any]) -> bool:
        expires_at = float(credentials.get("expires_at") or 0)
        return bool(credentials.get("access_token")) and (
            expires_at - self._clock() > self.refresh_margin
        )

    def reconnect_needed(self, reason: str) -> Exception:
        """Put the connection on "reconnect" and return the caller's error to raise."""
        self.store.mark_reconnect_needed(reason)
        return self._reconnect(reason)

    def access_token(self, *, rejected_token: str | None = None) -> str:
        """A usable access token. ``rejected_token``: the one the API just answered 401 to."""
        creds = self._credentials
        if creds is None:
            creds = self._credentials = self.store.load()
        if rejected_token is None and creds and self.fresh_enough(creds):
            return str(creds["access_token"])
        try:
            with self.store.lock(LOCK_NAME):
                return self._refresh_locked(rejected_token)
        except TimeoutError:  # LockTimeout: someone else has been refreshing for a long time
            raise self._retry_later(
                f"Waiting for another {self.app.label} token refresh.", None
            ) from None

    def _refresh_locked(self, rejected_token: str | None) -> str:
        creds = self.store.load()  # another process may have refreshed while we waited
        if not creds.get("refresh_token"):
            raise self.reconnect_needed(f"{self.app.label} is not connected: reconnect it.")
        current = creds.get("access_token")
        already_new = rejected_token is not None and current not in (None, rejected_token)
        if already_new or (rejected_token is None and self.fresh_enough(creds)):
            self._credentials = creds
            return str(current)
        try:
            new = self._refresh(self.app, str(creds["refresh_token"]))
        except OAuthError as exc:
            if exc.permanent:
                raise self.reconnect_needed(
                    f"{self.app.label} refused to renew access (the grant expired or was "
                    f"revoked); an admin must reconnect. {exc.message}"
                ) from None
            raise self._retry_later(exc.message, exc.retry_after) from None
        merged = {**creds, **new}
        self.store.save(merged)  # durable BEFORE use: the old refresh token may be spent
        self._credentials = merged
        return str(merged["access_token"])

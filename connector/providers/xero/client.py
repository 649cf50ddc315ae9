"""The one place the Xero connector talks HTTP to the Accounting API.

Every call goes through :meth:`XeroClient.request`, which

* carries the organisation's ``Xero-tenant-id`` and, on writes, an ``Idempotency-Key``,
* waits on the shared limiter: 60 calls a minute (sent evenly, 58 to keep a margin for clock
  skew), 5,000 a day (4,900, as a burst budget) and 5 in flight at once per organisation,
  counted by every process together; a 429 pauses the organisation for every worker for its
  ``Retry-After`` (Xero says which limit in ``X-Rate-Limit-Problem``),
* sends a fresh access token (30 minutes long; ``connector.oauth.tokens`` refreshes it under a
  lock every process shares and stores the rotated refresh token before it is used); a 401
  refreshes once and resends,
* bounds the call with (connect, read) timeouts and turns every failure into an error of
  :mod:`connector.providers.base`, deciding where the status is still known whether retrying can
  help and whether a write may have been committed (``outcome_unknown``).

No ``requests`` exception leaves this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import requests

from connector import observability
from connector.oauth.tokens import RefreshingToken
from connector.providers.base import (
    CredentialStore,
    RateLimiter,
    ReconnectNeeded,
    Rejected,
    RetryLater,
    Throttled,
)
from connector.providers.xero import oauth
from connector.providers.xero.errors import NotFound, describe
from connector.providers.xero.settings import XeroSettings
from connector.retry_after import retry_after

log = logging.getLogger(__name__)

NAME = "xero"
# Xero: 60 calls a minute, 5,000 a day and 5 at once per organisation (10,000 a minute per app).
CONCURRENT_CALLS = 5
REFRESH_MARGIN_SECONDS = 120.0  # refresh when less than this is left of the 30-minute token
DEFAULT_THROTTLE_SECONDS = 60.0


class XeroClient:
    """Authenticated, rate-limited, classified calls for one Xero organisation (tenant)."""

    def __init__(
        self,
        settings: XeroSettings,
        store: CredentialStore,
        tenant_id: str,
        *,
        limiter: RateLimiter,
        session: requests.Session | None = None,
        clock: Any = time.time,
    ):
        self.settings = settings
        self.store = store
        self.tenant_id = tenant_id
        self.limiter = limiter
        self.session = session or requests.Session()
        self.tokens = RefreshingToken(
            oauth.oauth_app(settings),
            store,
            refresh_margin=REFRESH_MARGIN_SECONDS,
            reconnect=lambda reason: ReconnectNeeded(
                f"{reason} Nothing is lost: held drafts are created once Xero is connected again."
            ),
            retry_later=lambda message, wait: RetryLater(message, retry_after=wait),
            clock=clock,
        )
        self.calls = 0  # requests sent (the benchmark prints requests per draft)

    # -- tokens (connector.oauth.tokens: one refresh at a time, stored before use) ------------
    def access_token(self, *, rejected_token: str | None = None) -> str:
        """A usable access token. ``rejected_token``: the one Xero just answered 401 to."""
        return self.tokens.access_token(rejected_token=rejected_token)

    def _reconnect(self, reason: str) -> ReconnectNeeded:
        self.store.mark_reconnect_needed(reason)
        return ReconnectNeeded(reason)

    # -- requests --------------------------------------------------------------------------------
    @property
    def limits(self) -> tuple[tuple[int, float] | tuple[int, float, int], ...]:
        """Evenly spaced within the minute; the day's budget may be spent in a burst."""
        day = self.settings.per_day
        return ((self.settings.per_minute, 60.0), (day, 86400.0, day))

    @property
    def bucket(self) -> str:
        """The shared limiter's bucket: Xero's limits are per organisation."""
        return f"xero:{self.tenant_id}"

    def url(self, path: str) -> str:
        return f"{self.settings.api_base_url}/{path.lstrip('/')}"

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: dict[str, str],
    ) -> requests.Response:
        self.limiter.acquire(self.bucket, self.limits)
        status: int | None = None
        with self.limiter.concurrent(self.bucket, CONCURRENT_CALLS):
            try:
                self.calls += 1
                response = self.session.request(
                    method,
                    self.url(path),
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self.settings.timeout,
                )
                status = response.status_code
                return response
            finally:
                observability.count_provider_call(NAME, status)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Send one call; returns the parsed JSON body or raises a provider error."""
        writes = method.upper() != "GET"
        if writes and not idempotency_key:
            raise ValueError("every Xero write carries an Idempotency-Key")
        token = self.access_token()
        for attempt in (1, 2):
            headers = {
                "Authorization": f"Bearer {token}",
                "Xero-tenant-id": self.tenant_id,
                "Accept": "application/json",
            }
            if body is not None:
                headers["Content-Type"] = "application/json"
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            try:
                response = self._send(method, path, params, body, headers)
            except requests.ConnectTimeout:
                raise RetryLater("Xero could not be reached (connect timeout).") from None
            except requests.Timeout:
                raise RetryLater("Xero did not answer in time.", outcome_unknown=writes) from None
            except requests.RequestException as exc:
                raise RetryLater(
                    f"The connection to Xero failed ({type(exc).__name__}).",
                    outcome_unknown=writes,
                ) from None
            if response.status_code == 401 and attempt == 1:
                # The access token expired mid-run (or was revoked): refresh once, send again.
                token = self.access_token(rejected_token=token)
                continue
            return self._classify(response, writes)
        raise AssertionError("unreachable")  # pragma: no cover

    def _classify(self, response: requests.Response, writes: bool) -> dict[str, Any]:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None  # 429s, 404s and gateway errors are often plain text or HTML
        if status == 429:
            wait = retry_after(response.headers) or DEFAULT_THROTTLE_SECONDS
            problem = response.headers.get("X-Rate-Limit-Problem") or "minute"
            # Every worker's calls to this organisation wait, not only this job's.
            self.limiter.pause(self.bucket, wait)
            raise Throttled(
                f"Xero is throttling calls to this organisation ({problem} limit).",
                retry_after=wait,
                code="429",
            )
        message, code = describe(body, status)
        if status >= 500:
            raise RetryLater(
                f"Xero had a server error (HTTP {status}).",
                retry_after=retry_after(response.headers),
                outcome_unknown=writes,
                code=code,
                detail=message,
            )
        if status == 401:
            raise self._reconnect(
                "Xero no longer accepts this connection's access: an admin must reconnect Xero. "
                + message
            )
        if status == 403:
            raise self._reconnect(
                "Xero refused access to this organisation: it was probably disconnected from "
                "this app in Xero (Settings > Connected apps). Reconnect Xero; held drafts are "
                "created once it is connected again."
            )
        if status == 404:
            raise NotFound(message, code="404")
        if status >= 400:
            raise Rejected(message, code=code or str(status))
        if not isinstance(body, dict):
            raise RetryLater(
                f"Xero sent an unreadable answer (HTTP {status}).", outcome_unknown=writes
            )
        return body

"""The one place the QuickBooks connector talks HTTP to the Accounting API.

Every request goes through :meth:`QboHttp.request`, which

* waits on the shared, cross-process rate limiter (Intuit: 10/s and 500/min per company) and,
  when QuickBooks throttles (429 / code 3001), pauses that company for every worker,
* sends a fresh access token, refreshing it first when it has < 5 minutes left, under a lock that
  every process shares (the refresh token rotates: :mod:`connector.oauth.tokens`),
* bounds the call with (connect, read) timeouts, and
* turns every failure into one of the errors of :mod:`connector.providers.base`, deciding at the
  HTTP layer, where the status code is still known, whether retrying can help and whether a
  create may already have been committed.

No ``requests`` exception leaves this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from http.cookiejar import DefaultCookiePolicy
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
from connector.providers.quickbooks import oauth
from connector.retry_after import retry_after

log = logging.getLogger(__name__)

MINOR_VERSION = 75  # below 75 Intuit ignores the minor version (since Aug 2025)
REFRESH_MARGIN_SECONDS = 300.0  # refresh when less than this is left of the 1 h access token
# Intuit allows 10/s and 500/min per company. The limiter spaces requests evenly (one per 0.122 s
# here, so at most 9 in any second); 2% under the minute's budget absorbs clock skew between
# workers and jitter on the way to Intuit.
LIMITS = ((10, 1.0), (490, 60.0))
THROTTLE_WAIT_SECONDS = 60.0  # Intuit: after a 429, wait a minute
NOT_FOUND_CODES = {"610"}  # "Object Not Found" (deleted or never existed)
THROTTLE_CODES = {"3001", "003001"}


class NotFound(Rejected):
    """The entity does not exist (any more). Internal: the provider maps it to None/ALREADY_GONE."""


def fault_errors(body: Any) -> list[dict[str, Any]]:
    """The error list of an Intuit fault body; 401 bodies spell it ``fault/error`` in lower case."""
    if not isinstance(body, Mapping):
        return []
    fault = body.get("Fault") or body.get("fault") or {}
    if not isinstance(fault, Mapping):
        return []
    errors = fault.get("Error") or fault.get("error") or []
    return [e for e in errors if isinstance(e, Mapping)]


def _first_error(body: Any) -> tuple[str, str | None, str | None]:
    errors = fault_errors(body)
    if not errors:
        return ("QuickBooks rejected the request.", None, None)
    e = errors[0]
    message = str(e.get("Message") or e.get("message") or "QuickBooks rejected the request.")
    detail = e.get("Detail") or e.get("detail")
    code = e.get("code")
    return (message, str(detail) if detail else None, str(code) if code is not None else None)


def _retry_after(response: requests.Response) -> float | None:
    return retry_after(response.headers)  # seconds or an HTTP date


_sessions = threading.local()


def thread_session() -> requests.Session:
    """This thread's HTTP session: kept-alive connections (and TLS) outlive one job's provider,
    which is built per job. No cookies are kept: one session serves every company."""
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


class QboHttp:
    """Authenticated, rate-limited, classified requests for one QuickBooks company (realm)."""

    def __init__(
        self,
        settings: oauth.IntuitSettings,
        store: CredentialStore,
        realm_id: str,
        *,
        limiter: RateLimiter,
        session: requests.Session | None = None,
        clock: Any = time.time,
    ):
        self.settings = settings
        self.store = store
        self.realm_id = realm_id
        self.limiter = limiter
        self.session = session or thread_session()
        # One refresh at a time across every process, rotated token stored before use.
        self.tokens = RefreshingToken(
            oauth.oauth_app(settings),
            store,
            refresh_margin=REFRESH_MARGIN_SECONDS,
            reconnect=ReconnectNeeded,
            retry_later=lambda message, wait: RetryLater(message, retry_after=wait),
            clock=clock,
        )

    # -- tokens ----------------------------------------------------------------------------------
    def access_token(self, *, rejected_token: str | None = None) -> str:
        """A usable access token. ``rejected_token``: the one QuickBooks just answered 401 to."""
        return self.tokens.access_token(rejected_token=rejected_token)

    def _reconnect(self, reason: str) -> Exception:
        return self.tokens.reconnect_needed(reason)

    # -- requests --------------------------------------------------------------------------------
    @property
    def bucket(self) -> str:
        """The shared limiter's bucket: Intuit's limits are per company (realm)."""
        return f"quickbooks:{self.realm_id}"

    def url(self, path: str) -> str:
        return f"{self.settings.api_base_url}/v3/company/{self.realm_id}/{path.lstrip('/')}"

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        body: Any,
        token: str,
    ) -> requests.Response:
        self.limiter.acquire(self.bucket, LIMITS)
        status: int | None = None
        try:
            response = self.session.request(
                method,
                self.url(path),
                params=params,
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json",
                    **({"Content-Type": "application/json"} if body is not None else {}),
                },
                timeout=self.settings.timeout,
            )
            status = response.status_code
            return response
        finally:
            observability.count_provider_call("quickbooks", status)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> dict[str, Any]:
        """Send one API call; returns the parsed JSON body or raises a provider error."""
        query = {"minorversion": MINOR_VERSION, **(params or {})}
        # A POST that may have reached Intuit could have been committed: the caller must look
        # before it creates again. A GET changes nothing, so its outcome is never "unknown".
        writes = method.upper() != "GET"
        token = self.access_token()
        for attempt in (1, 2):
            try:
                response = self._send(method, path, query, body, token)
            except requests.ConnectTimeout:
                raise RetryLater("QuickBooks could not be reached (connect timeout).") from None
            except requests.Timeout:
                raise RetryLater(
                    "QuickBooks did not answer in time.", outcome_unknown=writes
                ) from None
            except requests.RequestException as exc:
                raise RetryLater(
                    f"The connection to QuickBooks failed ({type(exc).__name__}).",
                    outcome_unknown=writes,
                ) from None
            if response.status_code == 401 and attempt == 1:
                # Expired or revoked access token: refresh once (under the lock) and resend.
                token = self.access_token(rejected_token=token)
                continue
            return self._classify(response, writes)
        raise AssertionError("unreachable")  # pragma: no cover

    def _classify(self, response: requests.Response, writes: bool) -> dict[str, Any]:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None  # 429 and gateway errors are often XML or HTML even when JSON was asked
        message, detail, code = _first_error(body)
        if status == 429 or code in THROTTLE_CODES:
            # Every worker's calls to this company wait, not only this job's.
            wait = _retry_after(response) or THROTTLE_WAIT_SECONDS
            self.limiter.pause(self.bucket, wait)
            raise Throttled(
                "QuickBooks is throttling requests for this company.",
                retry_after=wait,
                code=code or "429",
            )
        if status >= 500:
            raise RetryLater(
                f"QuickBooks had a server error (HTTP {status}).",
                retry_after=_retry_after(response),
                outcome_unknown=writes,
                code=code,
                detail=detail,
            )
        if status == 401:
            raise self._reconnect(
                "QuickBooks no longer accepts this connection's access (the app was "
                f"disconnected or the grant revoked); an admin must reconnect. {message}"
            )
        if status == 403:
            # The user lacks permission, or the company's subscription lapsed: a human must act
            # in QuickBooks; jobs wait rather than fail.
            raise self._reconnect(f"QuickBooks refused access to this company: {message}")
        if status == 404 or code in NOT_FOUND_CODES:
            raise NotFound(message, code=code or "404", detail=detail)
        if status >= 400 or fault_errors(body):
            raise Rejected(message, code=code, detail=detail)
        if not isinstance(body, dict):
            raise RetryLater(
                f"QuickBooks sent an unreadable answer (HTTP {status}).", outcome_unknown=writes
            )
        return body

    def query(self, statement: str) -> dict[str, Any]:
        """Run a QuickBooks query; returns ``QueryResponse`` (``{}`` when nothing matched)."""
        body = self.request("GET", "query", params={"query": statement})
        return dict(body.get("QueryResponse") or {})

"""Clockify REST API v1 (and its Reports API), the calls this source makes.

Every request goes through one place (``ClockifyClient.request``) that
  * waits for the limiter shared by every process, keyed per Clockify WORKSPACE (Clockify limits
    requests per workspace: 50 a second on paid plans; we stay well under it by default);
  * sends the API key in ``X-Api-Key`` (never in a URL, never logged);
  * retries what may pass: 429 after ``Retry-After`` (read by ``connector.retry_after``; the
    whole workspace's budget pauses, for every process), 5xx, timeouts and dropped connections
    with backoff;
  * confirms a 401 before believing it (once more after a short backoff): a second 401 means
    the key was revoked or regenerated, which only an admin can fix ("reconnect Clockify");
  * turns everything else into one of this module's errors.
No ``requests`` exception leaves this module.

Addresses come from ``CLOCKIFY_API_BASE_URL`` and ``CLOCKIFY_REPORTS_BASE_URL`` (regional
workspaces use regional hosts, e.g. ``https://euc1.clockify.me/api/v1``). See docs/clockify.md
for the sources of these facts and what is assumed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from connector import ratelimit
from connector.retry_after import retry_after
from webhooks.tracker_client import (  # the errors are the clients' own words too
    BadRequest,
    BadResponse,
    Forbidden,
    Limiter,
    NotFound,
    ReconnectRequired,
    TrackerError,
    Unavailable,
    backoff,
    default_sleep,
    pause_for_429,
    wait_for_slot,
)

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.clockify.me/api/v1"
DEFAULT_REPORTS_BASE_URL = "https://reports.api.clockify.me/v1"
APPROVAL_EVENT = "APPROVAL_REQUEST_STATUS_UPDATED"
PAGE_SIZE = 200
CONNECT_TIMEOUT = 5.0
MAX_PAGES = 1_000  # a server that never sends a short page cannot keep a poll running forever
UNAUTHORIZED_BACKOFF_SECONDS = 2.0
THROTTLED_MESSAGE = "Clockify is throttling requests for this workspace."
REVOKED_MESSAGE = (
    "Clockify refused the API key twice (revoked or regenerated). Reconnect Clockify with a "
    "current API key (Clockify: Profile settings > API)."
)
FORBIDDEN_MESSAGE = (
    "Clockify refused access: the API key's user must be a workspace Owner or Admin (only they "
    "can read every member's approved time and manage webhooks). Reconnect Clockify with such "
    "a user's key."
)


# --- errors: the only exceptions that leave this module ----------
# --- settings ----------
@dataclass(frozen=True)
class ClockifySettings:
    api_base_url: str = DEFAULT_API_BASE_URL
    reports_base_url: str = DEFAULT_REPORTS_BASE_URL
    read_timeout: float = 30.0
    requests_per_second: int = 10

    @property
    def timeout(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self.read_timeout)

    def limits(self) -> tuple[tuple[int, float], ...]:
        """Spaced requests per workspace, shared by every process: Clockify documents 50 a
        second per workspace on paid plans; the default 10 leaves room for the workspace's other
        integrations. (A free workspace's much lower limit answers 429; Retry-After pauses us.)"""
        return ((max(1, min(int(self.requests_per_second), 45)), 1.0),)


def settings_from_config(config: Mapping[str, Any]) -> ClockifySettings:
    def text(name: str, default: str) -> str:
        return str(config.get(name) or default).rstrip("/")

    return ClockifySettings(
        api_base_url=text("CLOCKIFY_API_BASE_URL", DEFAULT_API_BASE_URL),
        reports_base_url=text("CLOCKIFY_REPORTS_BASE_URL", DEFAULT_REPORTS_BASE_URL),
        read_timeout=float(config.get("CLOCKIFY_TIMEOUT_SECONDS") or 30.0),
        requests_per_second=int(config.get("CLOCKIFY_REQUESTS_PER_SECOND") or 10),
    )


def segment(value: str) -> str:
    """An id in a URL path, percent-encoded whole (Clockify ids are hex, but we never trust)."""
    return quote(str(value), safe="")


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")[:300]
    return ""


def iso_z(moment: datetime) -> str:
    """Clockify's date-time query format: ``2026-11-02T00:00:00.000Z`` (UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- the client ----------
class ClockifyClient:
    """Authenticated, rate-limited, classified calls for one connected Clockify workspace."""

    def __init__(
        self,
        settings: ClockifySettings,
        api_key: str,
        *,
        workspace_id: str,
        limiter: Limiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        max_attempts: int = 5,
        max_wait_seconds: float = 120.0,
    ):
        self.settings = settings
        self._api_key = api_key
        self.workspace_id = str(workspace_id)
        self.limiter = limiter if limiter is not None else ratelimit.shared_limiter()
        self.session = session or requests.Session()
        self._sleep = sleep if sleep is not None else default_sleep
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self.requests_sent = 0

    def __repr__(self) -> str:  # the key never shows in a log or a traceback
        return f"ClockifyClient(workspace_id={self.workspace_id!r})"

    @property
    def bucket(self) -> str:
        return f"clockify:{self.workspace_id}"

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt)

    def _acquire(self) -> None:
        wait_for_slot(
            self.limiter,
            self.bucket,
            self.settings.limits(),
            max_wait_seconds=self.max_wait_seconds,
            sleep=self._sleep,
            throttled_message=THROTTLED_MESSAGE,
        )

    def _throttled(self, response: requests.Response) -> Unavailable:
        return pause_for_429(
            self.limiter,
            self.bucket,
            response.headers,
            default_wait=1.0,
            throttled_message=THROTTLED_MESSAGE,
        )

    def _send(self, method: str, url: str, params: Any, body: Any) -> requests.Response:
        self._acquire()
        self.requests_sent += 1
        response = self.session.request(
            method,
            url,
            params=params,
            data=None if body is None else json.dumps(body),
            headers={
                "X-Api-Key": self._api_key,
                "Accept": "application/json",
                **({} if body is None else {"Content-Type": "application/json"}),
            },
            timeout=self.settings.timeout,
        )
        _ = response.content  # a connection dropped mid-body raises here, inside the try
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        reports: bool = False,
    ) -> tuple[Any, Mapping[str, str]]:
        """One call (to the Reports API when ``reports``); returns (the parsed JSON body or
        None, the response headers) or raises one of this module's errors."""
        base = self.settings.reports_base_url if reports else self.settings.api_base_url
        url = f"{base}/{path.lstrip('/')}"
        confirmed_401 = False
        last: TrackerError | None = None
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            try:
                response = self._send(method, url, dict(params or {}), body)
            except requests.Timeout:
                last = Unavailable("Clockify did not answer in time.")
            except requests.RequestException as exc:
                last = Unavailable(f"The connection to Clockify failed ({type(exc).__name__}).")
            else:
                status = response.status_code
                if status == 401 and not confirmed_401:
                    # One wrong answer must not hold the workspace: ask once more first.
                    confirmed_401 = True
                    log.info("Clockify answered 401; asking once more before holding")
                    self._sleep(UNAUTHORIZED_BACKOFF_SECONDS)
                    attempt -= 1
                    continue
                if status == 429:
                    throttled = self._throttled(response)
                    wait = float(throttled.retry_after or 0.0)
                    if wait > self.max_wait_seconds or attempt >= self.max_attempts:
                        raise throttled
                    last = throttled
                    self._sleep(wait)
                    continue
                if status >= 500:
                    last = Unavailable(
                        f"Clockify had a server error (HTTP {status}).",
                        status=status,
                        retry_after=retry_after(response.headers),
                    )
                else:
                    return self._classify(status, response), response.headers
            if attempt < self.max_attempts:
                self._sleep(self._backoff(attempt))
        assert last is not None
        raise last

    def _classify(self, status: int, response: requests.Response) -> Any:
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = None
        message = _error_message(body)
        if status == 401:
            raise ReconnectRequired(REVOKED_MESSAGE, status=401)
        if status == 403:
            raise Forbidden(FORBIDDEN_MESSAGE + (f" Clockify said: {message}" if message else ""))
        if status == 404:
            raise NotFound(message or "not found", status=404)
        if status >= 400:
            raise BadRequest(
                f"Clockify refused the request (HTTP {status}): {message}".rstrip(": "),
                status=status,
            )
        if response.content and body is None:
            raise BadResponse(f"Clockify sent an unreadable answer (HTTP {status}).", status=status)
        return body

    # -- pagination ------------------------------------------------------------------------------
    def iter_pages(self, path: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of a list endpoint (``page`` from 1, ``page-size``); the last page is the one
        the ``Last-Page: true`` header names, or a short one."""
        for page in range(1, MAX_PAGES + 1):
            body, headers = self.request(
                "GET", path, params={**params, "page": page, "page-size": PAGE_SIZE}
            )
            if body is None:
                body = []
            if not isinstance(body, list):
                raise BadResponse(f"Clockify's {path.split('/')[-1]} answer is not a list.")
            items = [item for item in body if isinstance(item, dict)]
            yield items
            last = str(headers.get("Last-Page") or "").lower()
            if last == "true" or not body or (last != "false" and len(body) < PAGE_SIZE):
                return  # the header decides when sent (Clockify may cap page-size below ours)

    def _ws(self, tail: str = "") -> str:
        return f"workspaces/{segment(self.workspace_id)}{tail}"

    # -- endpoints -------------------------------------------------------------------------------
    def current_user(self) -> dict[str, Any]:
        body, _ = self.request("GET", "user")
        if not isinstance(body, dict):
            raise BadResponse("Clockify's user answer is not an object.")
        return body

    def workspace(self) -> dict[str, Any]:
        """The connected workspace (NotFound when the key's user is not in it)."""
        body, _ = self.request("GET", "workspaces")
        if not isinstance(body, list):
            raise BadResponse("Clockify's workspaces answer is not a list.")
        for item in body:
            if isinstance(item, dict) and str(item.get("id")) == self.workspace_id:
                return item
        raise NotFound(
            f"The API key's user is not a member of Clockify workspace {self.workspace_id}.",
            status=404,
        )

    def approval_request_pages(self, status: str = "APPROVED") -> Iterator[list[dict[str, Any]]]:
        """Approval requests in ``status``, most recently updated first: a just-approved one is
        on the first page. Each item is ``{approvalRequest, entries, ...}``."""
        return self.iter_pages(
            self._ws("/approval-requests"),
            {"status": status, "sort-column": "UPDATED_AT", "sort-order": "DESCENDING"},
        )

    def user_time_entries(
        self, user_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """A member's time entries in [start, end] with project, client and task filled in."""
        path = self._ws(f"/user/{segment(user_id)}/time-entries")
        params = {"start": iso_z(start), "end": iso_z(end), "hydrated": "true"}
        return [entry for page in self.iter_pages(path, params) for entry in page]

    def projects(self) -> list[dict[str, Any]]:
        return [p for page in self.iter_pages(self._ws("/projects"), {}) for p in page]

    def clients(self) -> list[dict[str, Any]]:
        return [c for page in self.iter_pages(self._ws("/clients"), {}) for c in page]

    def webhooks(self) -> list[dict[str, Any]]:
        body, _ = self.request("GET", self._ws("/webhooks"))
        found = body.get("webhooks") if isinstance(body, dict) else body
        return [w for w in found or [] if isinstance(w, dict)]

    def create_webhook(self, url: str, name: str) -> dict[str, Any]:
        """Register ``url`` for the workspace's approval status changes; the answer carries the
        webhook's ``id`` and its ``authToken`` (sent back on every delivery)."""
        body, _ = self.request(
            "POST",
            self._ws("/webhooks"),
            body={
                "name": name,
                "url": url,
                "webhookEvent": APPROVAL_EVENT,
                "triggerSourceType": "WORKSPACE_ID",
                "triggerSource": [self.workspace_id],
            },
        )
        if not isinstance(body, dict) or not body.get("id") or not body.get("authToken"):
            raise BadResponse("Clockify created a webhook but sent no id or token for it.")
        return body

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook; one already gone is not an error."""
        try:
            self.request("DELETE", self._ws(f"/webhooks/{segment(webhook_id)}"))
        except NotFound:
            return

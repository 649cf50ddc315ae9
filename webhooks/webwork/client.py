"""WebWork Time Tracker REST API V2, read side: timesheets, projects, contracts, project viewers.

Every request goes through one place (``WebWorkClient.request``) that
  * waits for the limiter shared by every process, keyed per connected WebWork USER (WebWork
    allows 60 requests a minute per user, so two workspaces connected by one person share it);
  * sends ``Authorization: Bearer`` with a token from a ``TokenSource`` (a personal access token,
    or OAuth tokens refreshed under a cross-process lock);
  * retries what may pass (429 after ``Retry-After``, which also pauses the user's whole budget
    for every workspace and process; 5xx, timeouts and dropped connections with backoff);
  * confirms a 401 before believing it: after a short backoff it asks again (with a refreshed
    token when the token can be refreshed), and only a second 401 means "reconnect";
  * turns everything else into one of this module's errors.
No ``requests`` exception leaves this module.

Facts it relies on (docs: api-docs.webwork-tracker.com, "REST API V2"): the envelope
``{"success", "message", "data", "meta", "pagination"}`` with pagination either at the top
level or under ``meta``; ``per_page`` at most 100; ``workspace_id`` on every list call;
timesheet ids are opaque strings that may hold ``+``, ``/`` and ``=`` (percent-encoded here,
stored whole).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol
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

PER_PAGE = 100  # WebWork's maximum
CONNECT_TIMEOUT = 5.0
MAX_PAGES = 10_000  # a server that never says "last page" cannot keep a poll running forever
# A 401 is asked again after this long: WebWork has answered 401 to a token it accepted again a
# second later, and one wrong answer must not stop polling.
UNAUTHORIZED_BACKOFF_SECONDS = 2.0
THROTTLED_MESSAGE = "WebWork is throttling requests for the connected user (60 a minute)."
FORBIDDEN_MESSAGE = (
    "WebWork refused access: the connected user must be an Owner or Executive manager of the "
    "workspace (WebWork opens its API to those roles only). Connect such a user's account."
)


# --- errors: the only exceptions that leave this module ----------
# --- settings ----------
DEFAULT_API_BASE_URL = "https://api.webwork-tracker.com/api/v2"
DEFAULT_AUTHORIZE_URL = "https://webwork-tracker.com/oauth/authorize"
DEFAULT_TOKEN_URL = "https://webwork-tracker.com/oauth/token"


@dataclass(frozen=True)
class WebWorkSettings:
    api_base_url: str = DEFAULT_API_BASE_URL
    authorize_url: str = DEFAULT_AUTHORIZE_URL
    token_url: str = DEFAULT_TOKEN_URL
    client_id: str = ""
    client_secret: str = ""
    read_timeout: float = 30.0
    requests_per_minute: int = 57

    @property
    def timeout(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self.read_timeout)

    @property
    def oauth_configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def limits(self) -> tuple[tuple[int, float], ...]:
        """One request per 60/n seconds, in windows shared by every process of this user.

        A plain "n per minute" fixed window lets 2n through across a window edge (a burst at
        the end of one minute and the start of the next); spacing the requests instead keeps
        ANY sliding minute at n + 1 at most (59 for n = 58), while a steady stream still uses
        n a minute. (A second limit would cost budget: the shared limiter counts a waiting
        attempt in every window it checks.)
        """
        per_minute = max(1, min(int(self.requests_per_minute), 58))
        return ((1, 60.0 / per_minute),)


def settings_from_config(config: Mapping[str, Any]) -> WebWorkSettings:
    def text(name: str, default: str) -> str:
        return str(config.get(name) or default).rstrip("/")

    return WebWorkSettings(
        api_base_url=text("WEBWORK_API_BASE_URL", DEFAULT_API_BASE_URL),
        authorize_url=text("WEBWORK_AUTHORIZE_URL", DEFAULT_AUTHORIZE_URL),
        token_url=text("WEBWORK_TOKEN_URL", DEFAULT_TOKEN_URL),
        client_id=str(config.get("WEBWORK_CLIENT_ID") or ""),
        client_secret=str(config.get("WEBWORK_CLIENT_SECRET") or ""),
        read_timeout=float(config.get("WEBWORK_TIMEOUT_SECONDS") or 30.0),
        requests_per_minute=int(config.get("WEBWORK_REQUESTS_PER_MINUTE") or 57),
    )


# --- tokens ----------
class TokenSource(Protocol):
    def access_token(self, *, rejected_token: str | None = None) -> str:
        """A usable token; ``rejected_token`` is the one WebWork just answered 401 to."""
        ...


class StaticToken:
    """A personal access token: nothing to refresh. After a 401 the same token is tried once
    more (the client's confirmation); a second 401 means it expired or was revoked."""

    def __init__(self, token: str):
        self._token = token

    def access_token(self, *, rejected_token: str | None = None) -> str:
        return self._token


def token_claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT (WebWork's tokens are JWTs); {} for anything else.

    Used only to name the connected user and to key the per-user limiter, never to trust.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def user_key_for_token(token: str) -> str:
    """Who the limiter counts against: the JWT subject (the WebWork user), else a token hash."""
    sub = token_claims(token).get("sub")
    if sub not in (None, ""):
        return f"user-{sub}"
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:16]


def path_segment(value: str) -> str:
    """A timesheet id in a URL path: ``+``, ``/`` and ``=`` percent-encoded, nothing trimmed."""
    return quote(str(value), safe="")


# --- the client ----------
@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    current_page: int
    last_page: int | None
    total: int | None


def _retry_after(response: requests.Response) -> float | None:
    return retry_after(response.headers)  # seconds or an HTTP date (connector.retry_after)


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error") or "")
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:
            details = "; ".join(
                f"{field}: {', '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                for field, msgs in errors.items()
            )
            message = f"{message} ({details})" if message else details
        return message
    return ""


def pagination_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """Pagination at the top level or under ``meta`` (WebWork's examples show both)."""
    found = body.get("pagination")
    if not isinstance(found, dict):
        meta = body.get("meta")
        found = meta.get("pagination") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class WebWorkClient:
    """Authenticated, rate-limited, classified reads for one connected WebWork user."""

    def __init__(
        self,
        settings: WebWorkSettings,
        tokens: TokenSource,
        *,
        user_key: str,
        limiter: Limiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        max_attempts: int = 5,
        max_wait_seconds: float = 120.0,
        on_request: Callable[[str, str], None] | None = None,
    ):
        if limiter is None:
            limiter = ratelimit.shared_limiter()
        self.settings = settings
        self.tokens = tokens
        self.user_key = user_key
        self.limiter = limiter
        self.session = session or requests.Session()
        self._sleep = sleep if sleep is not None else default_sleep
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self.on_request = on_request  # benchmark/progress hook: (method, path)
        self.requests_sent = 0

    @property
    def bucket(self) -> str:
        return f"webwork:{self.user_key}"

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
            default_wait=60.0,
            throttled_message=THROTTLED_MESSAGE,
        )

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One API call; returns the parsed JSON body (the envelope) or raises a TrackerError."""
        url = f"{self.settings.api_base_url}/{path.lstrip('/')}"
        token = self.tokens.access_token()
        reauthorized = False
        last: TrackerError | None = None
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            self._acquire()
            self.requests_sent += 1
            if self.on_request is not None:
                self.on_request(method, path)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=dict(params or {}),
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    timeout=self.settings.timeout,
                )
                body_text = response.content  # a connection dropped mid-body raises here
            except requests.Timeout:
                last = Unavailable("WebWork did not answer in time.")
            except requests.RequestException as exc:
                last = Unavailable(f"The connection to WebWork failed ({type(exc).__name__}).")
            else:
                status = response.status_code
                if status == 401 and not reauthorized:
                    # Confirm before believing it: once more after a short backoff, with a
                    # refreshed token where one can be refreshed. Not a failed attempt.
                    reauthorized = True
                    log.info("WebWork answered 401; asking once more before holding")
                    self._sleep(UNAUTHORIZED_BACKOFF_SECONDS)
                    token = self.tokens.access_token(rejected_token=token)
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
                        f"WebWork had a server error (HTTP {status}).",
                        status=status,
                        retry_after=_retry_after(response),
                    )
                else:
                    try:
                        body: Any = json.loads(body_text) if body_text else None
                    except ValueError:
                        body = None
                    return self._classify(status, body)
            if attempt < self.max_attempts:
                self._sleep(self._backoff(attempt))
        assert last is not None
        raise last

    def _classify(self, status: int, body: Any) -> Any:
        message = _error_message(body)
        if status == 401:
            raise ReconnectRequired(
                "WebWork refused this connection's token twice (expired or revoked). "
                f"{message}".strip(),
                status=401,
            )
        if status == 403:
            raise Forbidden(FORBIDDEN_MESSAGE + (f" WebWork said: {message}" if message else ""))
        if status == 404:
            raise NotFound(message or "not found", status=404)
        if status >= 400:
            raise BadRequest(
                f"WebWork refused the request (HTTP {status}): {message}", status=status
            )
        if not isinstance(body, dict):
            raise BadResponse(f"WebWork sent an unreadable answer (HTTP {status}).", status=status)
        if body.get("success") is False:
            raise BadRequest(f"WebWork refused the request: {message}", status=status)
        return body

    # -- pagination ------------------------------------------------------------------------------
    def get_page(self, path: str, params: Mapping[str, Any], page: int) -> Page:
        body = self.request("GET", path, {**params, "page": page, "per_page": PER_PAGE})
        data = body.get("data")
        if data is None:
            data = []
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]  # some list endpoints nest the list once more
        if not isinstance(data, list):
            raise BadResponse(f"WebWork's {path} answer has no list in 'data'.")
        pagination = pagination_of(body)
        return Page(
            # A non-object entry is kept (marked) so the caller can count and skip it.
            items=[item if isinstance(item, dict) else {"__malformed__": item} for item in data],
            current_page=_int_or_none(pagination.get("current_page")) or page,
            last_page=_int_or_none(pagination.get("last_page")),
            total=_int_or_none(pagination.get("total")),
        )

    def iter_pages(self, path: str, params: Mapping[str, Any]) -> Iterator[Page]:
        page = 1
        while page <= MAX_PAGES:
            found = self.get_page(path, params, page)
            yield found
            if not found.items:
                return
            if found.last_page is not None:
                if found.current_page >= found.last_page:
                    return
            elif len(found.items) < PER_PAGE:
                return  # no pagination block: a short page is the last one
            page = found.current_page + 1

    def iter_items(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        for page in self.iter_pages(path, params):
            yield from page.items

    # -- endpoints -------------------------------------------------------------------------------
    def list_workspaces(self) -> list[dict[str, Any]]:
        body = self.request("GET", "workspaces", {"per_page": PER_PAGE})
        data = body.get("data")
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise BadResponse("WebWork's workspaces answer has no list in 'data'.")
        return [w for w in data if isinstance(w, dict)]

    def timesheet_pages(
        self,
        workspace_id: str,
        *,
        date_from: date,
        date_to: date,
        status: str | None = None,
    ) -> Iterator[Page]:
        params: dict[str, Any] = {
            "workspace_id": workspace_id,
            "date_from": date_from.isoformat(),
            "date_to": date_to.isoformat(),
            "order_by": "asc",  # by creation: new sheets land on the last page, not page 1
        }
        if status:
            params["status"] = status
        return self.iter_pages("timesheets", params)

    def get_timesheet(self, workspace_id: str, timesheet_id: str) -> dict[str, Any] | None:
        """One timesheet by its (opaque) id, or None; the id is sent whole, percent-encoded."""
        page = self.get_page("timesheets", {"workspace_id": workspace_id, "id": timesheet_id}, 1)
        for item in page.items:
            if str(item.get("id")) == str(timesheet_id):
                return item
        return None

    def members(self, workspace_id: str, **filters: Any) -> list[dict[str, Any]]:
        return list(self.iter_items("members", {"workspace_id": workspace_id, **filters}))

    def projects(self, workspace_id: str) -> list[dict[str, Any]]:
        return list(self.iter_items("projects", {"workspace_id": workspace_id}))

    def contracts(self, workspace_id: str) -> list[dict[str, Any]]:
        return list(self.iter_items("contracts", {"workspace_id": workspace_id}))

    def project_viewers(self, workspace_id: str) -> list[dict[str, Any]]:
        return list(self.iter_items("project-viewers", {"workspace_id": workspace_id}))

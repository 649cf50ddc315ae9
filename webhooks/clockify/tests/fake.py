"""A small stateful fake of Clockify's API v1, at the wire, and the webhooks it delivers.

Registered on a ``responses.RequestsMock``. Tests drive it as people drive Clockify: a member
tracks time (``track``), submits the period (``submit``), a manager approves it (``approve``),
takes the approval back (``withdraw``), the member edits an entry and resubmits, the manager
approves again. Every status change produces the webhook deliveries Clockify would send to the
webhooks registered for ``APPROVAL_REQUEST_STATUS_UPDATED`` (body, and the webhook's token in
``Clockify-Signature``); ``lose_webhooks`` drops them (the reconciling poll must find the
approval). Faults (``fail_next``: 429 with Retry-After, 5xx, timeouts) and a revoked key
(``revoke``) are injected between steps. Shapes follow docs/clockify.md: rates in cents,
``Last-Page`` pagination header, approval requests listed with their entries.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import requests
import responses

API = "https://clockify.test/api/v1"
REPORTS = "https://reports.clockify.test/v1"
WORKSPACE = "64f0aa11bb22cc33dd44ee55"
OWNER = ("64f0aa11bb22cc33dd44ee66", "Olive Owner", "olive@example.com")


@dataclass
class Delivery:
    """One webhook request Clockify would send."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeClockify:
    workspace_id: str = WORKSPACE
    workspace_name: str = "Acme Clockify"
    keys: dict[str, str] = field(default_factory=dict)  # api key -> user id
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Delivery] = field(default_factory=list)
    calls: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    faults: list[Callable[[Any], Any]] = field(default_factory=list)
    page_size_cap: int = 200
    token_header: str = "Clockify-Signature"
    lose_webhooks: bool = False
    _clock: datetime = field(default_factory=lambda: datetime(2026, 11, 9, 9, 0, tzinfo=UTC))
    _ids: int = 0

    # -- state ---------------------------------------------------------------------------------
    def new_id(self) -> str:
        self._ids += 1
        return f"{0x65A000000000000000000000 + self._ids:024x}"

    def tick(self, minutes: int = 5) -> str:
        self._clock += timedelta(minutes=minutes)
        return self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def add_user(self, user_id: str, name: str, email: str, tz: str = "Europe/Berlin") -> None:
        self.users[user_id] = {"id": user_id, "name": name, "email": email, "timeZone": tz}

    def add_key(self, user_id: str = OWNER[0]) -> str:
        if user_id not in self.users:
            self.add_user(*OWNER)
        key = f"key-{secrets.token_hex(8)}"
        self.keys[key] = user_id
        return key

    def revoke(self, key: str) -> None:
        self.keys.pop(key, None)

    def add_client(self, client_id: str, name: str) -> None:
        self.clients[client_id] = {"id": client_id, "name": name, "archived": False}

    def add_project(
        self,
        project_id: str,
        name: str,
        client_id: str | None = None,
        *,
        billable: bool = True,
        rate_cents: int | None = None,
        currency: str = "USD",
    ) -> None:
        self.projects[project_id] = {
            "id": project_id,
            "name": name,
            "clientId": client_id or "",
            "clientName": self.clients[client_id]["name"] if client_id else "",
            "billable": billable,
            "hourlyRate": {"amount": rate_cents, "currency": currency} if rate_cents else None,
            "archived": False,
        }

    def delete_project(self, project_id: str) -> None:
        self.projects.pop(project_id)

    def track(
        self,
        user_id: str,
        start: str,
        minutes: int,
        project_id: str | None,
        *,
        task: tuple[str, str] | None = None,
        billable: bool = True,
        rate_cents: int | None = None,
        currency: str = "USD",
        seconds: int = 0,
    ) -> dict[str, Any]:
        """A finished entry; ``start`` is local time in the member's zone (``2026-11-02T09:00``)."""
        zone = ZoneInfo(self.users[user_id]["timeZone"])
        begin = datetime.fromisoformat(start).replace(tzinfo=zone).astimezone(UTC)
        length = timedelta(minutes=minutes, seconds=seconds)
        entry = {
            "id": self.new_id(),
            "userId": user_id,
            "workspaceId": self.workspace_id,
            "projectId": project_id,
            "taskId": task[0] if task else None,
            "task": {"id": task[0], "name": task[1]} if task else None,
            "billable": billable,
            "type": "REGULAR",
            "description": "",
            "hourlyRate": {"amount": rate_cents, "currency": currency} if rate_cents else None,
            "timeInterval": {
                "start": _z(begin),
                "end": _z(begin + length),
                "duration": _duration(length),
            },
        }
        self.entries.append(entry)
        return entry

    def edit_entry(self, entry: dict[str, Any], minutes: int) -> None:
        begin = datetime.fromisoformat(entry["timeInterval"]["start"].replace("Z", "+00:00"))
        length = timedelta(minutes=minutes)
        entry["timeInterval"].update(end=_z(begin + length), duration=_duration(length))

    def submit(self, user_id: str, monday: str) -> str:
        """A weekly approval request for the week starting ``monday`` (the member's zone)."""
        user = self.users[user_id]
        zone = ZoneInfo(user["timeZone"])
        start = datetime.fromisoformat(monday).replace(tzinfo=zone)
        end = start + timedelta(days=7) - timedelta(seconds=1)
        request_id = self.new_id()
        self.approvals[request_id] = {
            "id": request_id,
            "workspaceId": self.workspace_id,
            "dateRange": {"start": _z(start.astimezone(UTC)), "end": _z(end.astimezone(UTC))},
            "owner": {
                "userId": user_id,
                "userName": user["name"],
                "timeZone": user["timeZone"],
                "startOfWeek": "MONDAY",
            },
            "creator": {"userId": user_id, "userName": user["name"], "userEmail": user["email"]},
            "status": {"state": "PENDING", "updatedAt": self.tick(), "note": ""},
            "type": "TIMESHEET",
        }
        return request_id

    def _set_state(self, request_id: str, state: str) -> list[Delivery]:
        request = self.approvals[request_id]
        request["status"] = {
            "state": state,
            "updatedBy": OWNER[0],
            "updatedByUserName": OWNER[1],
            "updatedAt": self.tick(),
            "note": "",
        }
        return self._deliver(request)

    def approve(self, request_id: str) -> list[Delivery]:
        return self._set_state(request_id, "APPROVED")

    def withdraw(self, request_id: str) -> list[Delivery]:
        return self._set_state(request_id, "WITHDRAWN_APPROVAL")

    def resubmit(self, request_id: str) -> list[Delivery]:
        return self._set_state(request_id, "PENDING")

    def _deliver(self, request: dict[str, Any]) -> list[Delivery]:
        """The webhook body Clockify sends: the request, its owner's zone as ``timezone``."""
        owner = dict(request["owner"])
        owner["timezone"] = owner.pop("timeZone")
        body = {k: v for k, v in request.items() if k not in ("creator", "type")}
        data = json.dumps({**body, "owner": owner}).encode()
        sent = [
            Delivery(
                hook["url"],
                {"Content-Type": "application/json", self.token_header: hook["authToken"]},
                data,
            )
            for hook in self.webhooks.values()
            if hook["webhookEvent"] == "APPROVAL_REQUEST_STATUS_UPDATED"
        ]
        if not self.lose_webhooks:
            self.outbox.extend(sent)
        return sent

    def fail_next(self, *faults: Callable[[Any], Any]) -> None:
        self.faults.extend(faults)

    def api_calls(self, tail: str, method: str = "GET") -> list[dict[str, list[str]]]:
        return [q for m, p, q in self.calls if m == method and p.endswith(tail)]

    # -- the wire --------------------------------------------------------------------------------
    def register(self, rsps: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(API) + r"/.*")
        for method in ("GET", "POST", "DELETE"):
            rsps.add_callback(method, pattern, callback=self._api)

    def _hydrated(self, entry: dict[str, Any]) -> dict[str, Any]:
        project = self.projects.get(entry["projectId"] or "")
        return {
            **entry,
            "project": None
            if project is None
            else {k: project[k] for k in ("id", "name", "clientId", "clientName")},
        }

    def _entries_of(self, user_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [
            self._hydrated(e)
            for e in self.entries
            if e["userId"] == user_id and start <= _instant(e["timeInterval"]["start"]) <= end
        ]

    def _page(self, items: list[Any], query: dict[str, list[str]]) -> tuple[dict[str, str], Any]:
        page = int(query.get("page", ["1"])[0])
        size = min(int(query.get("page-size", ["50"])[0]), self.page_size_cap)
        chunk = items[(page - 1) * size : page * size]
        last = page * size >= len(items)
        return {"Last-Page": "true" if last else "false"}, chunk

    def _api(self, request: Any) -> tuple[int, dict[str, str], str]:
        url = urlsplit(request.url)
        path = url.path[len(urlsplit(API).path) :]
        query = parse_qs(url.query)
        self.calls.append((request.method, path, query))
        if self.faults:
            result = self.faults.pop(0)(request)
            if result is not None:
                return result
        user_id = self.keys.get(request.headers.get("X-Api-Key", ""))
        if user_id is None:
            return 401, {}, json.dumps({"message": "Api key does not exist", "code": 4003})
        found = self._route(request, path, query, user_id)
        if found is None:
            return 404, {}, json.dumps({"message": "Not found", "code": 404})
        status, headers, body = found
        return status, headers, json.dumps(body)

    def _route(
        self, request: Any, path: str, query: dict[str, list[str]], user_id: str
    ) -> tuple[int, dict[str, str], Any] | None:
        method = request.method
        if path == "/user":
            user = self.users[user_id]
            return 200, {}, {**user, "activeWorkspace": self.workspace_id}
        if path == "/workspaces":
            return 200, {}, [{"id": self.workspace_id, "name": self.workspace_name}]
        prefix = f"/workspaces/{self.workspace_id}"
        if not path.startswith(prefix):
            return 403, {}, {"message": "Access denied to this workspace", "code": 1000}
        tail = path[len(prefix) :]
        if tail == "/approval-requests":
            return self._approval_requests(query)
        if match := re.fullmatch(r"/user/([^/]+)/time-entries", tail):
            start = _instant(query["start"][0])
            end = _instant(query["end"][0])
            headers, page = self._page(self._entries_of(match.group(1), start, end), query)
            return 200, headers, page
        if tail == "/projects":
            headers, page = self._page(list(self.projects.values()), query)
            return 200, headers, page
        if tail == "/clients":
            headers, page = self._page(list(self.clients.values()), query)
            return 200, headers, page
        return self._webhook_route(method, tail, request)

    def _approval_requests(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        state = query.get("status", [""])[0]
        found = [r for r in self.approvals.values() if not state or r["status"]["state"] == state]
        found.sort(key=lambda r: r["status"]["updatedAt"], reverse=True)
        items = []
        for request in found:
            start = _instant(request["dateRange"]["start"])
            end = _instant(request["dateRange"]["end"])
            entries = self._entries_of(request["owner"]["userId"], start, end)
            items.append({"approvalRequest": request, "entries": entries, "expenses": []})
        headers, page = self._page(items, query)
        return 200, headers, page

    def _webhook_route(
        self, method: str, tail: str, request: Any
    ) -> tuple[int, dict[str, str], Any] | None:
        if tail == "/webhooks" and method == "GET":
            hooks = list(self.webhooks.values())
            return 200, {}, {"webhooks": hooks, "workspaceWebhookCount": len(hooks)}
        if tail == "/webhooks" and method == "POST":
            body = json.loads(request.body)
            hook_id = self.new_id()
            self.webhooks[hook_id] = {
                **body,
                "id": hook_id,
                "workspaceId": self.workspace_id,
                "authToken": secrets.token_urlsafe(24),
                "enabled": True,
            }
            return 201, {}, self.webhooks[hook_id]
        if (match := re.fullmatch(r"/webhooks/([^/]+)", tail)) and method == "DELETE":
            if self.webhooks.pop(match.group(1), None) is None:
                return 404, {}, {"message": "Webhook not found", "code": 404}
            return 200, {}, {}
        return None


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _duration(length: timedelta) -> str:
    total = int(length.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{seconds}S" if seconds or total == 0 else "")


# -- faults ---------------------------------------------------------------------------------
def status(code: int, headers: dict[str, str] | None = None) -> Callable[[Any], Any]:
    return lambda _req: (code, headers or {}, json.dumps({"message": f"HTTP {code}"}))


def raise_(exc: Exception) -> Callable[[Any], Any]:
    def fault(_req: Any) -> Any:
        raise exc

    return fault


TIMEOUT = raise_(requests.ReadTimeout("read timed out"))
DROPPED = raise_(requests.exceptions.ChunkedEncodingError("connection broken mid-body"))


class NoLimiter:
    """Records what the client asked the shared limiter, never waits."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[tuple[int, float], ...]]] = []
        self.pauses: list[tuple[str, float]] = []

    def acquire(self, bucket: str, limits: tuple[tuple[int, float], ...]) -> None:
        self.calls.append((bucket, limits))

    def pause(self, bucket: str, seconds: float) -> None:
        self.pauses.append((bucket, seconds))

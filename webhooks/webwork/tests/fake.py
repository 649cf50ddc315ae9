"""A small stateful fake of WebWork's REST API V2 (and its OAuth token endpoint), at the wire.

Registered on a ``responses.RequestsMock`` (or served over HTTP by ``serve``: the benchmark's
worker processes reach it that way); tests change its state (approve, unapprove, edit rows,
change a rate) and inject faults (``fail_next``: a 429 with Retry-After, a transient 401, 5xx,
timeouts) between polls. Objects have WebWork's documented shapes (``reference/webwork.md``):
people as ``firstname``/``lastname``, a workspace's ``workspace_name``; ``legacy_names`` serves
the older single ``name`` instead.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses

API = "https://webwork.test/api/v2"
AUTHORIZE = "https://webwork.test/oauth/authorize"
TOKEN = "https://webwork.test/oauth/token"


def jwt(sub: str, name: str = "Olive Owner", email: str = "olive@example.com", n: int = 0) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'name': name, 'email': email, 'n': n})}.sig"


@dataclass
class FakeWebWork:
    workspace_id: str = "4242"
    workspace_name: str = "Acme WebWork"
    tokens: dict[str, str] = field(default_factory=dict)  # token -> role
    timesheets: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    viewers: list[dict[str, Any]] = field(default_factory=list)
    page_cap: int = 100
    legacy_names: bool = False  # people as {"name": ...} instead of firstname/lastname
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> member
    pagination_in_meta: bool = False
    rates_visible: bool = True
    calls: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    faults: list[Callable[[Any], Any]] = field(default_factory=list)
    on_call: Callable[[str, dict[str, list[str]]], None] | None = None
    # OAuth
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh -> sub
    codes: dict[str, str] = field(default_factory=dict)  # code -> sub
    token_calls: list[dict[str, list[str]]] = field(default_factory=list)
    _issued: int = 0

    # -- state ---------------------------------------------------------------------------------
    def add_token(self, sub: str = "501", role: str = "owner", **kw: Any) -> str:
        token = jwt(sub, **kw)
        self.tokens[token] = role
        return token

    def person(self, user_id: int | str, name: str, email: str | None = None) -> dict[str, Any]:
        """A person as WebWork shows one: {id, email, firstname, lastname} (or legacy name)."""
        email = email or f"{name.split()[0].lower()}@example.com"
        if self.legacy_names:
            return {"id": user_id, "name": name, "email": email}
        first, _, last = name.partition(" ")
        return {"id": user_id, "email": email, "firstname": first, "lastname": last}

    def add_member(self, user_id: int, name: str, email: str | None = None) -> dict[str, Any]:
        member = {**self.person(user_id, name, email), "current_role": "member", "status": 1}
        self.members[str(user_id)] = member
        return member

    def viewer(self, viewer_id: int, user_id: int, name: str, email: str, **where: Any) -> dict:
        """A project viewer (WebWork's "client"): {id, email, firstname, lastname, projects}."""
        return {**self.person(user_id, name, email), "id": viewer_id, "user_id": user_id, **where}

    def add_timesheet(
        self,
        ts_id: str,
        member: tuple[int, str],
        date_from: str,
        date_to: str,
        rows: dict[str, list[tuple[int, str, int | None, int]]],
        status: str = "approved",
    ) -> dict[str, Any]:
        ts = {
            "id": ts_id,
            "user_id": member[0],
            "member": self.person(member[0], member[1]),
            "date_from": date_from,
            "date_to": date_to,
            "status": status,
            "daily_breakdown": {},
        }
        self.set_rows(ts, rows)
        self.timesheets.append(ts)
        return ts

    @staticmethod
    def set_rows(
        ts: dict[str, Any], rows: dict[str, list[tuple[int, str, int | None, int]]]
    ) -> None:
        ts["daily_breakdown"] = {
            day: [
                {"project_id": p, "project_name": name, "contract_id": c, "total_minutes": m}
                for (p, name, c, m) in day_rows
            ]
            for day, day_rows in rows.items()
        }
        ts["total_minutes"] = sum(m for day_rows in rows.values() for (_, _, _, m) in day_rows)

    def get(self, ts_id: str) -> dict[str, Any]:
        return next(t for t in self.timesheets if t["id"] == ts_id)

    def fail_next(self, *faults: Callable[[Any], Any]) -> None:
        self.faults.extend(faults)

    def api_calls(self, path: str) -> list[dict[str, list[str]]]:
        return [q for (_, p, q) in self.calls if p == path]

    # -- wire ------------------------------------------------------------------------------------
    def register(self, rsps: responses.RequestsMock) -> None:
        rsps.add_callback(responses.GET, re.compile(re.escape(API) + r"/.*"), callback=self._api)
        rsps.add_callback(responses.POST, TOKEN, callback=self._token)

    def _envelope(self, items: list[Any], query: dict[str, list[str]]) -> dict[str, Any]:
        per_page = min(int(query.get("per_page", ["20"])[0]), 100, self.page_cap)
        page = int(query.get("page", ["1"])[0])
        total = len(items)
        last = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        pagination = {"current_page": page, "per_page": per_page, "total": total, "last_page": last}
        body: dict[str, Any] = {
            "success": True,
            "message": "ok",
            "data": chunk,
            "meta": {"api_version": "v2", "timestamp": "2026-11-30T00:00:00Z"},
        }
        if self.pagination_in_meta:
            body["meta"]["pagination"] = pagination
        else:
            body["pagination"] = pagination
        return body

    def _api(self, request: Any) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url)
        path = parts.path[len(urlsplit(API).path) + 1 :]
        query = parse_qs(parts.query, keep_blank_values=True)
        self.calls.append(("GET", path, query))
        if self.on_call is not None:
            self.on_call(path, query)
        if self.faults:
            fault = self.faults.pop(0)
            result = fault(request)
            if result is not None:
                return result
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if token not in self.tokens:
            return 401, {}, json.dumps({"success": False, "message": "Unauthenticated."})
        if self.tokens[token] not in ("owner", "executive"):
            return (
                403,
                {},
                json.dumps({"success": False, "message": "Forbidden", "error": "forbidden"}),
            )
        if path == "workspaces":
            sub = token.split(".")[1] if token.count(".") == 2 else ""
            claims = json.loads(base64.urlsafe_b64decode(sub + "=" * (-len(sub) % 4)) or b"{}")
            workspace = {
                "id": int(self.workspace_id),
                "owner_id": claims.get("sub"),
                "user_id": claims.get("sub"),
                "role": self.tokens[token],
                "status": 1,
            }
            workspace["name" if self.legacy_names else "workspace_name"] = self.workspace_name
            return 200, {}, json.dumps({"success": True, "data": [workspace]})
        if query.get("workspace_id") != [self.workspace_id]:
            return (
                422,
                {},
                json.dumps(
                    {
                        "success": False,
                        "message": "invalid",
                        "errors": {"workspace_id": ["is required"]},
                    }
                ),
            )
        if path == "timesheets":
            items = list(self.timesheets)
            if "id" in query:
                items = [t for t in items if t["id"] == query["id"][0]]
            if "status" in query:
                items = [t for t in items if t["status"] == query["status"][0]]
            if "date_from" in query:
                items = [t for t in items if t["date_to"] >= query["date_from"][0]]
            if "date_to" in query:
                items = [t for t in items if t["date_from"] <= query["date_to"][0]]
            return 200, {}, json.dumps(self._envelope(items, query))
        if path == "members":
            items = list(self.members.values())
            if "user_id" in query:
                items = [m for m in items if str(m["id"]) == query["user_id"][0]]
            return 200, {}, json.dumps(self._envelope(items, query))
        if path == "projects":
            return 200, {}, json.dumps(self._envelope(self.projects, query))
        if path == "contracts":
            items = (
                self.contracts
                if self.rates_visible
                else [
                    {k: v for k, v in c.items() if k not in ("rate", "rate_history", "currency")}
                    for c in self.contracts
                ]
            )
            return 200, {}, json.dumps(self._envelope(items, query))
        if path == "project-viewers":
            return 200, {}, json.dumps(self._envelope(self.viewers, query))
        return 404, {}, json.dumps({"success": False, "message": "not found"})

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        form = parse_qs(request.body if isinstance(request.body, str) else request.body.decode())
        self.token_calls.append(form)
        if self.faults:
            fault = self.faults.pop(0)
            result = fault(request)
            if result is not None:
                return result
        grant = form.get("grant_type", [""])[0]
        if grant == "authorization_code":
            sub = self.codes.pop(form.get("code", [""])[0], None)
        elif grant == "refresh_token":
            sub = self.refresh_tokens.pop(form.get("refresh_token", [""])[0], None)
        else:
            sub = None
        if sub is None:
            return 400, {}, json.dumps({"error": "invalid_grant", "error_description": "revoked"})
        self._issued += 1
        access = jwt(sub, n=self._issued)
        self.tokens[access] = "owner"
        refresh = f"rt-{self._issued}"
        self.refresh_tokens[refresh] = sub
        return (
            200,
            {},
            json.dumps(
                {
                    "token_type": "Bearer",
                    "expires_in": 1296000,
                    "access_token": access,
                    "refresh_token": refresh,
                }
            ),
        )


# -- faults ---------------------------------------------------------------------------------
def status(code: int, headers: dict[str, str] | None = None) -> Callable[[Any], Any]:
    return lambda _req: (
        code,
        headers or {},
        json.dumps({"success": False, "message": f"HTTP {code}"}),
    )


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


# -- over HTTP (the benchmark: its worker processes cannot see a responses mock) ---------------
class _HttpRequest:
    def __init__(self, url: str, headers: Any, body: bytes):
        self.url = url
        self.headers = headers
        self.body = body


def serve(fake: FakeWebWork, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Serve ``fake`` at ``http://host:port/api/v2`` and ``/oauth/token`` in a daemon thread;
    returns the server (``server_address``, ``shutdown()``). ``fake`` is then reached at the
    address returned by :func:`served_api`."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()  # the fake's state is not thread-safe: one request at a time

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            # The fake matches its own (https://webwork.test) addresses.
            path = self.path.replace("/api/v2", urlsplit(API).path, 1)
            request = _HttpRequest(f"https://webwork.test{path}", self.headers, body)
            with lock:
                if method == "POST":
                    code, headers, text = fake._token(request)
                else:
                    code, headers, text = fake._api(request)
            data = text.encode()
            self.send_response(code)
            for name, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="fake-webwork", daemon=True).start()
    return server


def served_api(server: Any) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/api/v2"

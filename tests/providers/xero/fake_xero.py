"""A stateful fake of Xero (identity service + Accounting API), shaped like its real traffic.

One :class:`FakeXero` holds organisations, contacts, invoices and tokens; :meth:`FakeXero.handle`
answers one HTTP request the way Xero does (bodies as in Xero's OpenAPI examples: ``{"Invoices":
[...]}``, validation errors as ``ValidationException`` with ``Elements[].ValidationErrors``, auth
failures as problem documents). Two adapters put it on a wire: :meth:`install` behind
``responses`` (the tests) and :meth:`wsgi` as a small HTTP server (the benchmark).

It keeps what Xero keeps for exactly-once: the answer of each ``Idempotency-Key`` (a repeat is
answered with the first result and creates nothing), and it enforces what Xero enforces when
asked to (``enforce_limits``): 60 calls a minute and 5 at once per organisation, answering 429
with ``Retry-After`` and ``X-Rate-Limit-Problem``. Every Invoice and Contact body it receives is
validated against Xero's published OpenAPI schema (``openapi/``) before it is stored.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"
REVOKE_URL = "https://identity.xero.com/connect/revocation"
CONNECTIONS_URL = "https://api.xero.com/connections"
AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
CLIENT_ID = "XEROCLIENTID0001"
CLIENT_SECRET = "xero-client-secret"

CONFIG: dict[str, Any] = {
    "XERO_CLIENT_ID": CLIENT_ID,
    "XERO_CLIENT_SECRET": CLIENT_SECRET,
    # The wire is mocked: no need to space calls a second apart (the limits have their own tests).
    "XERO_REQUESTS_PER_MINUTE": 600000,
    "XERO_REQUESTS_PER_DAY": 10**9,
    "XERO_WEBHOOK_KEY": "xero-webhook-key-for-tests",
    "PUBLIC_BASE_URL": "http://invoicer.test",
}

Answer = tuple[int, dict[str, str], Any]  # status, headers, JSON body (or text)


def problem(status: int, title: str, detail: str) -> Answer:
    return (
        status,
        {},
        {"Type": None, "Title": title, "Status": status, "Detail": detail, "Extensions": {}},
    )


def validation_error(element: dict[str, Any], *messages: str) -> Answer:
    return (
        400,
        {},
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [
                {**element, "ValidationErrors": [{"Message": message} for message in messages]}
            ],
        },
    )


def ms_date(seconds: float) -> str:
    return f"/Date({int(seconds * 1000)}+0000)/"


@dataclass
class Org:
    tenant_id: str
    name: str
    base_currency: str = "NZD"
    currencies: set[str] = field(default_factory=lambda: {"NZD", "USD", "AUD"})
    short_code: str = "!tsiFk"
    accounts: tuple[str, ...] = ("200", "260")
    items: tuple[str, ...] = ("HOURS",)


class FakeXero:
    def __init__(
        self,
        *,
        enforce_limits: bool = False,
        clock: Callable[[], float] = time.time,
        tenant: str | None = None,
    ):
        # A tenant of its own per fake: the shared limiter (Redis) outlives one test.
        self.tenant = tenant or str(uuid.uuid4())
        self.lock = threading.RLock()
        self.clock = clock
        self.orgs: dict[str, Org] = {}
        self.contacts: dict[str, dict[str, Any]] = {}  # ContactID -> row (with _tenant)
        self.invoices: dict[str, dict[str, Any]] = {}  # InvoiceID -> row (with _tenant)
        self.idempotent: dict[tuple[str, str], Answer] = {}
        self.codes: dict[str, dict[str, Any]] = {}  # authorization code -> grant
        self.access: dict[str, dict[str, Any]] = {}  # access token -> grant (+ expires_at)
        self.refresh: dict[str, dict[str, Any]] = {}  # live refresh token -> grant
        self.revoked: set[str] = set()
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.faults: deque[tuple[str, str, Any]] = deque()  # (method, path regex, fault)
        self.enforce_limits = enforce_limits
        self.window: dict[str, deque[float]] = {}
        self.in_flight: dict[str, int] = {}
        self.refreshes = 0
        self.throttled = 0  # 429s answered (enforce_limits)
        self.next_number = 1
        self.add_org(self.tenant, "Tsi Demo (NZ)")

    # -- set-up helpers --------------------------------------------------------------------------
    def add_org(self, tenant_id: str, name: str, **kw: Any) -> Org:
        self.orgs[tenant_id] = Org(tenant_id, name, **kw)
        return self.orgs[tenant_id]

    def add_contact(
        self,
        name: str,
        *,
        currency: str | None = None,
        email: str | None = None,
        status: str = "ACTIVE",
        tenant: str | None = None,
    ) -> str:
        contact_id = str(uuid.uuid4())
        tenant = tenant or self.tenant
        row = {"ContactID": contact_id, "Name": name, "ContactStatus": status, "_tenant": tenant}
        if currency:
            row["DefaultCurrency"] = currency
        if email:
            row["EmailAddress"] = email
        self.contacts[contact_id] = row
        return contact_id

    def grant(self, tenants: tuple[str, ...] = (), code: str = "code-1") -> str:
        """An authorization code for a consent covering these organisations."""
        tenants = tenants or (self.tenant,)
        self.codes[code] = {"tenants": list(tenants), "connections": {}}
        for tenant in tenants:
            self.codes[code]["connections"][tenant] = str(uuid.uuid4())
        return code

    def issue_tokens(self, tenants: tuple[str, ...] = ()) -> dict[str, Any]:
        """Tokens as a finished consent leaves them (for tests that start connected)."""
        code = self.grant(tenants, code=f"code-{uuid.uuid4().hex[:6]}")
        _status, _headers, body = self._token(
            {"grant_type": ["authorization_code"], "code": [code]}
        )
        return {
            "access_token": body["access_token"],
            "refresh_token": body["refresh_token"],
            "token_type": "Bearer",
            "expires_at": self.clock() + 1800,
        }

    def fail_next(self, method: str, path_pattern: str, fault: Any) -> None:
        """The next matching call fails: an int (status), an Answer, or "timeout-after-commit"
        / "timeout" (the call is processed, or not, and the caller never hears back)."""
        self.faults.append((method.upper(), path_pattern, fault))

    def expire_access_tokens(self) -> None:
        for grant in self.access.values():
            grant["expires_at"] = 0.0

    def revoke_refresh_tokens(self) -> None:
        self.revoked |= set(self.refresh)
        self.refresh.clear()

    def disconnect_org(self, tenant_id: str | None = None) -> None:
        """The organisation is disconnected from this app in Xero (Settings > Connected apps)."""
        tenant_id = tenant_id or self.tenant
        for grant in [*self.access.values(), *self.refresh.values()]:
            if tenant_id in grant["tenants"]:
                grant["tenants"].remove(tenant_id)

    def api_calls(self, method: str | None = None, prefix: str = "") -> list[tuple[str, str]]:
        return [
            (m, p)
            for m, p, _h in self.calls
            if (method is None or m == method) and p.startswith(prefix)
        ]

    def invoices_of(self, tenant: str | None = None, *, live: bool = True) -> list[dict[str, Any]]:
        tenant = tenant or self.tenant
        return [
            row
            for row in self.invoices.values()
            if row["_tenant"] == tenant and (not live or row["Status"] != "DELETED")
        ]

    # -- the identity service ----------------------------------------------------------------
    def _new_tokens(self, grant: dict[str, Any]) -> dict[str, Any]:
        access, refresh = f"xat-{uuid.uuid4().hex}", f"xrt-{uuid.uuid4().hex}"
        live = {"tenants": grant["tenants"], "connections": grant["connections"]}
        self.access[access] = {**live, "expires_at": self.clock() + 1800}
        self.refresh[refresh] = live
        return {
            "id_token": None,
            "access_token": access,
            "expires_in": 1800,
            "token_type": "Bearer",
            "refresh_token": refresh,
            "scope": "offline_access accounting.invoices accounting.contacts",
        }

    def _token(self, form: dict[str, list[str]]) -> Answer:
        grant_type = (form.get("grant_type") or [""])[0]
        if grant_type == "authorization_code":
            grant = self.codes.pop((form.get("code") or [""])[0], None)
        elif grant_type == "refresh_token":
            self.refreshes += 1
            grant = self.refresh.pop((form.get("refresh_token") or [""])[0], None)
        else:
            return 400, {}, {"error": "unsupported_grant_type"}
        if grant is None:
            return 400, {}, {"error": "invalid_grant"}
        return 200, {}, self._new_tokens(grant)

    def _connections(self, method: str, path: str, headers: dict[str, str]) -> Answer:
        grant = self._grant_of(headers)
        if grant is None:
            return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        if method == "DELETE":
            connection_id = path.rsplit("/", 1)[-1]
            for tenant, cid in list(grant["connections"].items()):
                if cid == connection_id and tenant in grant["tenants"]:
                    self.disconnect_org(tenant)
                    return 204, {}, ""
            return 404, {}, ""
        return (
            200,
            {},
            [
                {
                    "id": grant["connections"][tenant],
                    "authEventId": str(uuid.uuid4()),
                    "tenantId": tenant,
                    "tenantType": "ORGANISATION",
                    "tenantName": self.orgs[tenant].name,
                    "createdDateUtc": "2026-05-01T10:00:00.0000000",
                    "updatedDateUtc": "2026-05-01T10:00:00.0000000",
                }
                for tenant in grant["tenants"]
            ],
        )

    def _grant_of(self, headers: dict[str, str]) -> dict[str, Any] | None:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        grant = self.access.get(token)
        if grant is None or grant["expires_at"] <= self.clock():
            return None
        return grant

    # -- dispatch --------------------------------------------------------------------------------
    def handle(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> Answer | str:
        """One request; returns the answer, or "timeout" when the caller must never hear back."""
        headers = {k.lower(): v for k, v in headers.items()}
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        method = method.upper()
        with self.lock:
            if url.startswith(TOKEN_URL):
                return self._token(parse_qs((body or b"").decode()))
            if url.startswith(REVOKE_URL):
                token = (parse_qs((body or b"").decode()).get("token") or [""])[0]
                self.refresh.pop(token, None)
                self.revoked.add(token)
                return 200, {}, ""
            if url.startswith(CONNECTIONS_URL):
                return self._connections(method, parsed.path, headers)
            path = parsed.path.split("/api.xro/2.0/", 1)[-1]
            self.calls.append((method, path, headers))
            fault = self._take_fault(method, path)
            if fault == "timeout":
                return "timeout"
            if fault is not None and fault != "timeout-after-commit":
                return fault if isinstance(fault, tuple) else (fault, {}, {"Message": "fault"})
            tenant = headers.get("xero-tenant-id", "")
            grant = self._grant_of(headers)
            if grant is None:
                return problem(401, "Unauthorized", "TokenExpired: token expired")
            if tenant not in grant["tenants"] or tenant not in self.orgs:
                return problem(403, "Forbidden", "AuthenticationUnsuccessful")
            throttled = self._limit(tenant)
            if throttled is not None:
                return throttled
        try:
            answer = self._answer(method, path, query, headers, body, tenant)
        finally:
            with self.lock:
                if self.enforce_limits:
                    self.in_flight[tenant] -= 1
        return "timeout" if fault == "timeout-after-commit" else answer

    def _take_fault(self, method: str, path: str) -> Any:
        for index, (m, pattern, fault) in enumerate(self.faults):
            if m == method and re.fullmatch(pattern, path):
                del self.faults[index]
                return fault
        return None

    def _limit(self, tenant: str) -> Answer | None:
        if not self.enforce_limits:
            return None
        now = self.clock()
        window = self.window.setdefault(tenant, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= 60:
            wait = int(window[0] + 60 - now) + 1
            self.throttled += 1
            return 429, {"Retry-After": str(wait), "X-Rate-Limit-Problem": "minute"}, ""
        if self.in_flight.get(tenant, 0) >= 5:
            self.throttled += 1
            return 429, {"Retry-After": "1", "X-Rate-Limit-Problem": "concurrent"}, ""
        window.append(now)
        self.in_flight[tenant] = self.in_flight.get(tenant, 0) + 1
        return None

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes | None,
        tenant: str,
    ) -> Answer:
        doc = json.loads(body) if body else None
        key = headers.get("idempotency-key")
        if method != "GET" and key:
            with self.lock:
                replay = self.idempotent.get((tenant, key))
            if replay is not None:
                return replay
        from tests.providers.xero import fake_xero_api as api

        answer = api.route(self, method, path, query, doc, tenant)
        if method != "GET" and key and answer[0] < 500:
            with self.lock:
                self.idempotent[(tenant, key)] = answer
        return answer

    # -- adapters ----------------------------------------------------------------------------------
    def install(self, rsps: Any) -> FakeXero:
        """Answer every Xero address through ``responses``."""
        import requests

        def callback(request: Any) -> tuple[int, dict[str, str], str]:
            raw = request.body
            answer = self.handle(
                request.method,
                request.url,
                dict(request.headers),
                raw.encode() if isinstance(raw, str) else raw,
            )
            if answer == "timeout":
                raise requests.ReadTimeout("fake Xero: no answer in time")
            status, extra, payload = answer
            text = payload if isinstance(payload, str) else json.dumps(payload)
            return status, {"Content-Type": "application/json", **extra}, text

        pattern = re.compile(r"https://(identity|api)\.xero\.com/.*")
        for verb in ("GET", "PUT", "POST", "DELETE"):
            rsps.add_callback(verb, pattern, callback=callback)
        return self

    def wsgi(self) -> Callable[..., Any]:
        """A WSGI app answering like Xero at any host (XERO_*_URL point at it)."""

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING", "")
            prefixes = {
                "/identity/token": TOKEN_URL,
                "/identity/revoke": REVOKE_URL,
                "/connections": CONNECTIONS_URL,
            }
            url = next(
                (real + path[len(p) :] for p, real in prefixes.items() if path.startswith(p)),
                API + path.removeprefix("/api.xro/2.0"),
            )
            headers = {
                key[5:].replace("_", "-").lower(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            answer = self.handle(
                environ["REQUEST_METHOD"], url + (f"?{query}" if query else ""), headers, raw
            )
            if answer == "timeout":
                time.sleep(60)
                answer = (504, {}, "")
            status, extra, payload = answer
            text = payload if isinstance(payload, str) else json.dumps(payload)
            start_response(f"{status} X", [("Content-Type", "application/json"), *extra.items()])
            return [text.encode()]

        return app

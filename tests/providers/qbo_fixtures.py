"""A stateful fake of QuickBooks Online for ``responses``, plus XSD validation of what we send.

The response bodies are shaped on the recorded sandbox traffic in
``shared/reference/quickbooks-recorded/`` (create_invoice.yml, create_customer.yml,
get_display_name.yml, delete_invoice.yml, error_validation.yml, error_401.yml). The fake keeps
the invoices it "created" keyed by ``requestid`` so a repeated create returns the original one,
as QuickBooks does, and counts every call so tests can prove exactly-once behaviour.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

REALM = "9130357766900456"
API = "https://sandbox-quickbooks.api.intuit.com"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
NS = "http://schema.intuit.com/finance/v3"

CONFIG: dict[str, Any] = {
    "QUICKBOOKS_CLIENT_ID": "ABtestclientid",
    "QUICKBOOKS_CLIENT_SECRET": "test-client-secret",
    "QUICKBOOKS_ENVIRONMENT": "sandbox",
    "PUBLIC_BASE_URL": "http://invoicer.test",
}

# --- recorded shapes ----------------------------------------------------------------------------
THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" '
    'time="2024-05-02T07:10:11.12-07:00">'
    '<Fault type="ValidationFault"><Error code="003001"><Message>message=ThrottleExceeded; '
    "errorCode=003001; statusCode=429</Message><Detail>The request limit was reached.</Detail>"
    "</Error></Fault></IntuitResponse>"
)

FAULT_401 = {  # error_401.yml: lower-case fault/error
    "warnings": None,
    "intuitObject": None,
    "fault": {
        "error": [
            {
                "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "detail": "Token expired: AB0160...",
                "code": "3200",
                "element": None,
            }
        ],
        "type": "AUTHENTICATION",
    },
    "time": 1601391072830,
}


def fault(code: str, message: str, detail: str, element: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"Message": message, "Detail": detail, "code": code}
    if element:
        error["element"] = element
    return {
        "Fault": {"Error": [error], "type": "ValidationFault"},
        "time": "2024-05-02T06:58:50.262-07:00",
    }


FAULT_6240 = fault(
    "6240", "Duplicate Name Exists Error", "The name supplied already exists. : null"
)
FAULT_6070 = fault(
    "6070",
    "Unit Price * Qty does not equal Amount",
    "Unit Price * Qty does not equal Amount: Amount = 100.00, UnitPrice = 33.33, Qty = 3",
)
FAULT_610 = fault(
    "610",
    "Object Not Found",
    "Object Not Found : Something you're trying to use has been made inactive.",
)
FAULT_5010 = fault(
    "5010",
    "Stale Object Error",
    "Stale Object Error : You and another user were working on the same thing.",
)


def customer_row(
    id_: str,
    name: str,
    *,
    currency: str = "USD",
    email: str | None = None,
    terms: str | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Taxable": True,
        "Job": False,
        "BillWithParent": False,
        "Balance": 0,
        "BalanceWithJobs": 0,
        "CurrencyRef": {"value": currency, "name": currency},
        "PreferredDeliveryMethod": "Print",
        "domain": "QBO",
        "sparse": False,
        "Id": id_,
        "SyncToken": "0",
        "MetaData": {
            "CreateTime": "2020-09-29T05:58:16-07:00",
            "LastUpdatedTime": "2020-09-29T05:58:16-07:00",
        },
        "FullyQualifiedName": name,
        "DisplayName": name,
        "PrintOnCheckName": name,
        "Active": True,
    }
    if email:
        row["PrimaryEmailAddr"] = {"Address": email}
    if terms:
        row["SalesTermRef"] = {"value": terms}
    return row


def invoice_row(id_: str, sent: dict[str, Any], doc_number: str) -> dict[str, Any]:
    """The invoice QuickBooks returns for a create body (create_invoice.yml's shape)."""
    lines = []
    total = Decimal("0")
    for n, line in enumerate(sent["Line"], start=1):
        amount = Decimal(str(line["Amount"]))
        total += amount
        lines.append({"Id": str(n), "LineNum": n, **line})
    lines.append(
        {"Amount": float(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    )
    row = {
        "AllowIPNPayment": False,
        "AllowOnlinePayment": False,
        "AllowOnlineCreditCardPayment": False,
        "AllowOnlineACHPayment": False,
        "domain": "QBO",
        "sparse": False,
        "Id": id_,
        "SyncToken": "0",
        "MetaData": {
            "CreateTime": "2024-05-02T05:58:07-07:00",
            "LastUpdatedTime": "2024-05-02T05:58:07-07:00",
        },
        "DocNumber": doc_number,
        "TxnDate": sent.get("TxnDate", "2024-05-02"),
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "LinkedTxn": [],
        "Line": lines,
        "TxnTaxDetail": {"TotalTax": 0},
        "CustomerRef": sent["CustomerRef"],
        "DueDate": sent.get("DueDate", "2024-06-01"),
        "TotalAmt": float(total),
        "ApplyTaxAfterDiscount": False,
        "PrintStatus": "NeedToPrint",
        "EmailStatus": "NotSet",
        "Balance": float(total),
    }
    for key in ("PrivateNote", "CustomerMemo"):
        if key in sent:
            row[key] = sent[key]
    return row


# --- XSD validation -------------------------------------------------------------------------------
def xsd_dir() -> Path:
    default = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "quickbooks-xsd"
    return Path(os.environ.get("QBO_XSD_DIR") or default)


@functools.lru_cache(maxsize=1)
def _schema() -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(xsd_dir() / "IntuitRestServiceDef.xsd"))


def qbo_schema() -> Any:
    """Intuit's schema, compiled once per test session; skips when the XSDs are not present."""
    if not (xsd_dir() / "IntuitRestServiceDef.xsd").is_file():
        if os.environ.get("QBO_XSD_REQUIRED"):  # set by .ci/run when the schemas are beside us
            pytest.fail(f"QBO_XSD_REQUIRED is set but no XSDs are at {xsd_dir()}")
        pytest.skip(
            f"Intuit's QuickBooks XSDs are not at {xsd_dir()} (set QBO_XSD_DIR to validate "
            "what the connector sends against them)"
        )
    return _schema()


def _to_xml_data(value: Any) -> Any:
    """QuickBooks JSON -> xmlschema's dict form: ``{"value", "name"}`` refs become simple content
    with attributes, numbers become their literal text, lists become repeated elements."""
    if isinstance(value, dict):
        if "value" in value and set(value) <= {"value", "name", "type"}:
            out = {"$": _to_xml_data(value["value"])}
            for attr in ("name", "type"):
                if attr in value:
                    out[f"@{attr}"] = value[attr]
            return out
        return {k: _to_xml_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_xml_data(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


def validate_entity(entity: str, body: dict[str, Any]) -> Any:
    """Encode ``body`` as the XSD element ``entity`` (in schema order) and validate the tree.

    Raises ``xmlschema`` validation errors on unknown fields, bad enums, empty or malformed dates
    and numbers, LineNum 0, and so on. Returns the XML element tree.
    """
    schema = qbo_schema()
    element = schema.elements[entity]
    data = _to_xml_data(body)
    # unordered=True: the encoder places children in the order the XSD sequences demand.
    tree = element.encode(data, namespaces={"": NS}, unordered=True)
    schema.validate(tree)
    return tree


def sent_json(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body, parse_float=Decimal)


# --- a stateful fake QuickBooks -----------------------------------------------------------------
class FakeQbo:
    """Registers ``responses`` callbacks that behave like one QuickBooks company."""

    def __init__(
        self,
        rsps: responses.RequestsMock,
        *,
        api: str = API,
        country: str = "US",
        realm: str = REALM,
        oauth: bool = True,
        company_name: str = "Sandbox Co",
    ):
        # A second company (another realm) on the same wire: oauth=False, the first one answers
        # Intuit's token endpoints for both.
        self.rsps = rsps
        self.api = api
        self.country = country
        self.realm = realm
        self.oauth = oauth
        self.company_name = company_name
        self.customers: dict[str, dict[str, Any]] = {
            "1": customer_row("1", "Amy's Bird Sanctuary", email="Birds@Intuit.com", terms="3"),
            "58": customer_row("58", "Kensington Ltd", currency="GBP"),
        }
        self.terms = {"3": {"Id": "3", "Name": "Net 30", "DueDays": 30, "Active": True}}
        # Preferences.CurrencyPrefs: with multicurrency off, only home-currency customers exist.
        self.multicurrency = True
        self.home_currency = "USD"
        self.items: dict[str, dict[str, Any]] = {}
        self.accounts = [
            {"Id": "79", "Name": "Sales of Product Income", "AccountType": "Income"},
            {"Id": "1", "Name": "Services", "AccountType": "Income"},
        ]
        self.invoices: dict[str, dict[str, Any]] = {}  # by Id
        self.by_request_id: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self.created_bodies: dict[str, list[dict[str, Any]]] = {}  # entity -> bodies sent
        self.updated_bodies: list[dict[str, Any]] = []  # sparse invoice updates sent
        self.queries: list[str] = []
        self.valid_tokens = {"access-1"}
        self.refresh_tokens = {"refresh-1"}
        self.token_posts = 0
        self.token_delay = 0.0
        self.revoked: list[str] = []
        self.next_id = 300
        self.lock = threading.Lock()
        # (method, path regex) -> list of callables(request) -> response-or-None, consumed FIFO
        self.faults: list[tuple[str, str, Callable[[Any], Any]]] = []
        self._register()

    # -- helpers for tests
    def inject(self, method: str, path_regex: str, action: Callable[[Any], Any]) -> None:
        """The next matching request runs ``action`` (return a response tuple or an exception;
        return None to fall through to the normal behaviour afterwards)."""
        self.faults.append((method, path_regex, action))

    def calls(self, method: str, path_part: str) -> list[Any]:
        return [
            c
            for c in self.rsps.calls
            if c.request.method == method
            and path_part in urlparse(c.request.url).path
            and f"/company/{self.realm}/" in c.request.url
        ]

    # -- plumbing
    def _register(self) -> None:
        pattern = re.compile(re.escape(f"{self.api}/v3/company/{self.realm}/") + r".*")
        for method in ("GET", "POST"):
            self.rsps.add_callback(method, pattern, callback=self._api)
        if self.oauth:
            self.rsps.add_callback("POST", TOKEN_URL, callback=self._token)
            self.rsps.add_callback("POST", REVOKE_URL, callback=self._revoke)

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
        return (status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body))

    def _token(self, request: Any) -> Any:
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        with self.lock:
            self.token_posts += 1
            n = self.token_posts
        if self.token_delay:
            time.sleep(self.token_delay)  # widen the race window in concurrency tests
        if form.get("grant_type") == "refresh_token":
            with self.lock:
                if form.get("refresh_token") not in self.refresh_tokens:
                    return (400, {"Content-Type": "application/json"}, '{"error":"invalid_grant"}')
                # Rotation: the old refresh token dies the moment a new one is issued.
                self.refresh_tokens = {f"refresh-{n + 1}"}
                self.valid_tokens = {f"access-{n + 1}"}
            body = {
                "token_type": "bearer",
                "access_token": f"access-{n + 1}",
                "refresh_token": f"refresh-{n + 1}",
                "expires_in": 3600,
                "x_refresh_token_expires_in": 8726400,
            }
            return self._json(200, body)
        if form.get("grant_type") == "authorization_code":
            if form.get("code") != "good-code":
                return (400, {"Content-Type": "application/json"}, '{"error":"invalid_grant"}')
            return self._json(
                200,
                {
                    "token_type": "bearer",
                    "access_token": "access-1",
                    "refresh_token": "refresh-1",
                    "expires_in": 3600,
                    "x_refresh_token_expires_in": 8726400,
                },
            )
        return (400, {}, '{"error":"unsupported_grant_type"}')

    def _revoke(self, request: Any) -> Any:
        token = json.loads(request.body)["token"]
        self.revoked.append(token)
        self.refresh_tokens.discard(token)
        return (200, {}, "")

    def _api(self, request: Any) -> Any:
        url = urlparse(request.url)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.split(f"/v3/company/{self.realm}/", 1)[-1]
        for i, (method, regex, action) in enumerate(self.faults):
            if method == request.method and re.fullmatch(regex, path):
                del self.faults[i]
                result = action(request)
                if result is not None:
                    return result
                break
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return self._json(401, FAULT_401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        assert params.get("minorversion") == "75"
        if request.method == "GET":
            return self._get(path, params)
        return self._post(path, params, json.loads(request.body, parse_float=Decimal))

    def _get(self, path: str, params: dict[str, str]) -> Any:
        if path == f"companyinfo/{self.realm}":
            return self._json(
                200,
                {
                    "CompanyInfo": {
                        "Id": "1",
                        "CompanyName": self.company_name,
                        "Country": self.country,
                    }
                },
            )
        if path == "query":
            return self._json(200, {"QueryResponse": self._query(params["query"])})
        entity, _, id_ = path.partition("/")
        table = {
            "customer": ("Customer", self.customers),
            "term": ("Term", self.terms),
            "invoice": ("Invoice", self.invoices),
        }.get(entity)
        if table and id_ in table[1]:
            return self._json(200, {table[0]: table[1][id_]})
        return self._json(400, FAULT_610)

    def _query(self, statement: str) -> dict[str, Any]:
        self.queries.append(statement)
        m = re.match(
            r"SELECT \* FROM (\w+)(?: WHERE (.*?))?(?: ORDERBY .*?)?"
            r"(?: STARTPOSITION (\d+))?(?: MAXRESULTS (\d+))?$",
            statement,
        )
        assert m, statement
        entity, where, start, maxr = m.groups()
        rows: list[dict[str, Any]] = {
            "Customer": list(self.customers.values()),
            "Item": list(self.items.values()),
            "Account": self.accounts,
            "Invoice": sorted(self.invoices.values(), key=lambda r: -int(r["Id"])),
            "Preferences": [
                {
                    "Id": "1",
                    "SyncToken": "0",
                    "CurrencyPrefs": {
                        "MultiCurrencyEnabled": self.multicurrency,
                        "HomeCurrency": {"value": self.home_currency},
                    },
                }
            ],
        }[entity]
        by_customer_day = re.fullmatch(
            r"CustomerRef = '(\w+)' AND TxnDate = '([\d-]+)'", where or ""
        )
        ids_in = re.fullmatch(r"Id IN \((.*)\)", where or "")
        if by_customer_day:
            customer_id, day = by_customer_day.groups()
            rows = [
                r for r in rows if r["CustomerRef"]["value"] == customer_id and r["TxnDate"] == day
            ]
        elif ids_in:  # the status sync's batch read: deleted invoices are simply absent
            wanted = set(re.findall(r"'(\d+)'", ids_in.group(1)))
            rows = [r for r in rows if r["Id"] in wanted]
        elif where:
            eq = re.match(r"(DisplayName|Name) = '((?:[^'\\]|\\.)*)'", where)
            like = re.match(r"DisplayName LIKE '%((?:[^'\\]|\\.)*)%'", where)
            if eq:
                value = re.sub(r"\\(.)", r"\1", eq.group(2))
                rows = [r for r in rows if r.get(eq.group(1)) == value]
            elif like:
                value = re.sub(r"\\(.)", r"\1", like.group(1)).lower()
                rows = [r for r in rows if value in r["DisplayName"].lower()]
        first = int(start or 1)
        page = rows[first - 1 : first - 1 + int(maxr or 100)]
        if not page:
            return {}
        return {entity: page, "startPosition": first, "maxResults": len(page)}

    def _post(self, path: str, params: dict[str, str], body: dict[str, Any]) -> Any:
        entity = path
        if entity == "invoice" and params.get("operation") == "delete":
            inv = self.invoices.get(str(body["Id"]))
            if inv is None:
                return self._json(400, FAULT_610)
            if inv["SyncToken"] != str(body["SyncToken"]):
                return self._json(400, FAULT_5010)
            del self.invoices[str(body["Id"])]
            return self._json(
                200, {"Invoice": {"domain": "QBO", "status": "Deleted", "Id": body["Id"]}}
            )
        if entity == "invoice" and body.get("sparse") and body.get("Id"):
            return self._sparse_update_invoice(params, body)
        with self.lock:
            self.created_bodies.setdefault(entity, []).append(body)
            rid = params.get("requestid")
            if rid and (entity, rid) in self.by_request_id:
                # QuickBooks: a repeated requestid returns the original response.
                kind, stored = self.by_request_id[(entity, rid)]
                return self._json(200, {kind: stored})
            self.next_id += 1
            new_id = str(self.next_id)
            if entity == "invoice":
                row = invoice_row(
                    new_id, json.loads(json.dumps(body, default=float)), f"10{new_id}"
                )
                self.invoices[new_id] = row
                kind = "Invoice"
            elif entity == "customer":
                names = {c["DisplayName"] for c in self.customers.values()}
                if body["DisplayName"] in names:
                    return self._json(400, FAULT_6240)
                currency = body.get("CurrencyRef", {}).get("value", self.home_currency)
                if currency != self.home_currency and not self.multicurrency:
                    return self._json(
                        400,
                        fault(
                            "6000",
                            "A business validation error has occurred while processing your "
                            "request",
                            "Business Validation Error: Multicurrency is not enabled.",
                        ),
                    )
                row = customer_row(new_id, body["DisplayName"], currency=currency)
                self.customers[new_id] = row
                kind = "Customer"
            elif entity == "item":
                if any(i["Name"] == body["Name"] for i in self.items.values()):
                    return self._json(400, FAULT_6240)
                row = {
                    **json.loads(json.dumps(body, default=float)),
                    "Id": new_id,
                    "SyncToken": "0",
                    "Active": True,
                }
                self.items[new_id] = row
                kind = "Item"
            else:  # pragma: no cover
                raise AssertionError(path)
            if rid:
                self.by_request_id[(entity, rid)] = (kind, row)
            return self._json(200, {kind: row, "time": "2024-05-02T05:58:07.300-07:00"})

    def _sparse_update_invoice(self, params: dict[str, str], body: dict[str, Any]) -> Any:
        """``sparse: true``: the fields sent replace the stored ones; a Line array replaces every
        line (lines sent with their Id keep it, new ones get one). A stale SyncToken is 5010."""
        with self.lock:
            rid = params.get("requestid")
            if rid and ("invoice-update", rid) in self.by_request_id:
                return self._json(200, {"Invoice": self.by_request_id[("invoice-update", rid)][1]})
            self.updated_bodies.append(body)
            inv = self.invoices.get(str(body["Id"]))
            if inv is None:
                return self._json(400, FAULT_610)
            if inv["SyncToken"] != str(body["SyncToken"]):
                return self._json(400, FAULT_5010)
            plain = json.loads(json.dumps(body, default=float))
            if "Line" in plain:
                taken = [int(line["Id"]) for line in inv["Line"] if line.get("Id")]
                next_line = max(taken, default=0) + 1
                lines, total = [], Decimal("0")
                for n, line in enumerate(plain["Line"], start=1):
                    if not line.get("Id"):
                        line["Id"] = str(next_line)
                        next_line += 1
                    line["LineNum"] = n
                    total += Decimal(str(line["Amount"]))
                    lines.append(line)
                lines.append(
                    {
                        "Amount": float(total),
                        "DetailType": "SubTotalLineDetail",
                        "SubTotalLineDetail": {},
                    }
                )
                inv["Line"] = lines
                inv["TotalAmt"] = inv["Balance"] = float(total)
            for key in ("PrivateNote", "CustomerMemo"):
                if key in plain:
                    inv[key] = plain[key]
            inv["SyncToken"] = str(int(inv["SyncToken"]) + 1)
            stored = json.loads(json.dumps(inv))
            if rid:
                self.by_request_id[("invoice-update", rid)] = ("Invoice", stored)
            return self._json(200, {"Invoice": stored})

    def edit_invoice(self, invoice_id: str, **fields: Any) -> None:
        """Finance changes the invoice in QuickBooks: its SyncToken moves on."""
        inv = self.invoices[invoice_id]
        inv.update(fields)
        inv["SyncToken"] = str(int(inv["SyncToken"]) + 1)


class NoLimiter:
    """Counts acquisitions instead of sleeping (the shared limiter has its own tests)."""

    def __init__(self) -> None:
        self.buckets: list[tuple[str, tuple[tuple[int, float], ...]]] = []
        self.pauses: list[tuple[str, float]] = []

    def acquire(self, bucket: str, limits: tuple[tuple[int, float], ...]) -> None:
        self.buckets.append((bucket, limits))

    def pause(self, bucket: str, seconds: float) -> None:
        self.pauses.append((bucket, seconds))


def connect_store(
    workspace_id: int, app: Any, *, expires_in: float = 3600.0, realm: str = REALM, **creds: Any
) -> Any:
    """A DbCredentialStore holding a connected sandbox company with the given tokens."""
    from connector.connections.store import DbCredentialStore, secret_box

    store = DbCredentialStore(workspace_id, "quickbooks", secret_box(app.config))
    credentials = {
        "access_token": "access-1",
        "refresh_token": "refresh-1",
        "expires_at": time.time() + expires_in,
        **creds,
    }
    store.connect(credentials, account_id=realm, environment="sandbox")
    return store


def timeout_after(fake: FakeQbo) -> Callable[[Any], Any]:
    """An action that lets the request through (it is committed) and then loses the answer."""

    def action(request: Any) -> Any:
        fake._api(request)  # QuickBooks did the work ...
        return requests.ReadTimeout("read timed out")  # ... but the answer never arrived

    return action

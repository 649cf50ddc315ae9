"""A small stateful Stripe behind the mocked wire (``responses``): invoices, their lines and
idempotency keys, enough to drive the pipeline's per_period consolidation end to end."""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs, urlparse

import responses

API = "https://api.stripe.com"


def _form(body: Any) -> dict[str, str]:
    if isinstance(body, bytes):
        body = body.decode()
    return {k: v[0] for k, v in parse_qs(body or "", keep_blank_values=True).items()}


def _nested_lines(form: dict[str, str]) -> list[dict[str, Any]]:
    """``lines[0][metadata][draft_key]=...`` -> [{"metadata": {"draft_key": ...}, ...}]."""
    out: dict[int, dict[str, Any]] = {}
    for key, value in form.items():
        found = re.match(r"lines\[(\d+)\]\[(\w+)\](?:\[(\w+)\])?", key)
        if not found:
            continue
        index, name, sub = int(found.group(1)), found.group(2), found.group(3)
        line = out.setdefault(index, {})
        if sub is None:
            line[name] = value
        else:
            line.setdefault(name, {})[sub] = value
    return [out[i] for i in sorted(out)]


class FakeStripe:
    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.invoices: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        # "add_lines" -> n: the next n add_lines land, but their answer is a 500 (lost outcome)
        self.fail_next: dict[str, int] = {}
        self.guard = threading.Lock()
        self._n = 0
        pattern = re.compile(rf"{re.escape(API)}/v1/.*")
        for method in ("GET", "POST", "DELETE"):
            rsps.add_callback(method, pattern, callback=self._handle)

    # -- helpers for tests
    def live(self) -> list[dict[str, Any]]:
        return [inv for inv in self.invoices.values() if not inv.get("deleted")]

    def finalize(self, invoice_id: str) -> None:
        self.invoices[invoice_id]["status"] = "open"

    def amounts(self, invoice: dict[str, Any]) -> list[int]:
        return [line["amount"] for line in invoice["lines"]["data"]]

    # -- the wire
    def _handle(self, request: Any) -> tuple[int, dict[str, str], str]:
        with self.guard:
            url = urlparse(request.url)
            self.requests.append((request.method, url.path))
            key = request.headers.get("Idempotency-Key")
            if key and key in self.keys:
                status, body = self.keys[key]
                return status, {"Idempotent-Replayed": "true"}, json.dumps(body)
            status, body = self._route(request.method, url.path, url.query, request.body)
            if key and request.method == "POST":
                self.keys[key] = (status, body)
            return status, {"Request-Id": "req_fake"}, json.dumps(body)

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return status, {"error": {"type": kind, "code": code, "message": message}}

    def _route(self, method: str, path: str, query: str, body: Any) -> tuple[int, dict[str, Any]]:
        form = _form(body)
        parts = path.split("/")[2:]  # ["invoices", id, action]
        if parts[0] == "customers":
            return 200, {"id": parts[1], "object": "customer", "currency": "usd", "name": "Acme"}
        if parts == ["invoices"] and method == "POST":
            self._n += 1
            invoice_id = f"in_fake{self._n}"
            self.invoices[invoice_id] = {
                "id": invoice_id,
                "object": "invoice",
                "status": "draft",
                "customer": form["customer"],
                "currency": form.get("currency", "usd"),
                "description": form.get("description"),
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
                "lines": {"object": "list", "data": [], "total_count": 0, "has_more": False},
                "total": 0,
                "number": None,
            }
            return 200, self.invoices[invoice_id]
        if parts == ["invoices"] and method == "GET":
            customer = parse_qs(query).get("customer", [None])[0]
            data = [i for i in self.live() if customer is None or i["customer"] == customer]
            return 200, {"object": "list", "data": data, "has_more": False}
        invoice = self.invoices.get(parts[1])
        if invoice is None or invoice.get("deleted"):
            return self._error(404, "resource_missing", f"No such invoice: '{parts[1]}'")
        action = parts[2] if len(parts) > 2 else None
        if action is None and method == "GET":
            return 200, invoice
        if action == "lines" and method == "GET":
            return 200, {"object": "list", "data": invoice["lines"]["data"], "has_more": False}
        if invoice["status"] != "draft" and method != "GET":
            return self._error(
                400, "invoice_not_editable", "This invoice is no longer editable (finalized)."
            )
        if action is None and method == "DELETE":
            invoice["deleted"] = True
            return 200, {"id": invoice["id"], "object": "invoice", "deleted": True}
        if action is None and method == "POST":
            if "description" in form:
                invoice["description"] = form["description"]
            return 200, invoice
        if action == "add_lines":
            lost = bool(self.fail_next.get("add_lines"))
            if lost:
                self.fail_next["add_lines"] -= 1
            for line in _nested_lines(form):
                self._n += 1
                invoice["lines"]["data"].append(
                    {
                        "id": f"il_fake{self._n}",
                        "object": "line_item",
                        "amount": int(line["amount"]),
                        "description": line.get("description"),
                        "metadata": line.get("metadata", {}),
                    }
                )
            self._totals(invoice)
            if lost:
                return self._error(500, "api_error", "Something went wrong")
            return 200, invoice
        if action == "remove_lines":
            gone = {line["id"] for line in _nested_lines(form)}
            invoice["lines"]["data"] = [
                ln for ln in invoice["lines"]["data"] if ln["id"] not in gone
            ]
            self._totals(invoice)
            return 200, invoice
        return self._error(400, "parameter_unknown", f"unexpected {method} {path}")

    @staticmethod
    def _totals(invoice: dict[str, Any]) -> None:
        invoice["lines"]["total_count"] = len(invoice["lines"]["data"])
        invoice["total"] = sum(line["amount"] for line in invoice["lines"]["data"])

"""Fuzzer findings on the JSON API (issue #9): ids beyond the column range, problem details that
break their own schema, undeclared statuses, and non-strings stored as text."""

from __future__ import annotations

import re
from typing import Any

import pytest
from werkzeug.exceptions import NotFound

from connector.providers.base import ReconnectNeeded
from tests.admin.events import add_local_customer

# 2**31 is one past PostgreSQL's integer; 10**20 is past any 64-bit integer.
TOO_BIG = ("2147483648", "9223372036854775808", "99999999999999999999")


@pytest.mark.parametrize("number", TOO_BIG)
def test_ids_beyond_the_column_range_are_404_not_500(
    client: Any, workspace: Any, number: str
) -> None:
    for method, path in (
        ("GET", f"/api/v1/rates/{number}"),
        ("PUT", f"/api/v1/rates/{number}"),
        ("DELETE", f"/api/v1/rates/{number}"),
        ("DELETE", f"/api/v1/tokens/{number}"),
    ):
        response = client.open(path, method=method, json={}, headers=workspace.auth)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.mimetype == "application/problem+json"


def test_every_int_route_converter_is_bounded(app: Any) -> None:
    # The general fix: one converter for every <int:...>, so a new route cannot forget it.
    from werkzeug.routing import IntegerConverter

    int_rules = [r for r in app.url_map.iter_rules() if "<int:" in r.rule]
    assert int_rules
    adapter = app.url_map.bind("invoicer.test")
    for rule in int_rules:
        too_big = re.sub(r"<int:[a-z_]+>", "2147483648", rule.rule)
        too_big = re.sub(r"<(?:path:)?[a-z_]+>", "x", too_big)
        with pytest.raises(NotFound):
            adapter.match(too_big, method=sorted(rule.methods or {"GET"})[0])
        assert all(
            c.max == 2**31 - 1 for c in rule._converters.values() if isinstance(c, IntegerConverter)
        ), rule.rule


def test_405_carries_allow(client: Any, workspace: Any) -> None:
    response = client.patch("/api/v1/rates", headers=workspace.auth)
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def _problem_fields_are_strings(response: Any) -> None:
    body = response.json
    assert response.mimetype == "application/problem+json"
    for key in ("type", "title", "detail", "field"):
        if key in body:
            assert isinstance(body[key], str), (key, body)


def test_problem_field_is_never_null(client: Any, workspace: Any) -> None:
    # A body that is not JSON at all has no field to point at: "field" is left out, not null.
    for body in (b"not json", b"[]", b'{"type": "timesheet.approved"}'):
        response = client.post(
            "/api/v1/preview",
            data=body,
            headers={**workspace.auth, "Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422), body
        _problem_fields_are_strings(response)


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"tax_code": 0}, "/settings/tax_code"),
        ({"tax_code": {}}, "/settings/tax_code"),
        ({"tax_code": ["TAX"]}, "/settings/tax_code"),
        ({"default_currency": ["USD"]}, "/settings/default_currency"),
        ({"grouping": ["project"]}, "/settings/grouping"),
        # Whole-number settings: true is not 1 and 30.5 days is not 30.
        ({"billing_increment": True}, "/settings/billing_increment"),
        ({"payment_terms_days": True}, "/settings/payment_terms_days"),
        ({"payment_terms_days": 30.5}, "/settings/payment_terms_days"),
        ({"payment_terms_days": {}}, "/settings/payment_terms_days"),
    ],
)
def test_settings_string_fields_accept_only_strings(
    client: Any, workspace: Any, settings: dict[str, Any], field: str
) -> None:
    response = client.patch("/api/v1/settings", json={"settings": settings}, headers=workspace.auth)
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    stored = client.get("/api/v1/settings", headers=workspace.auth).json["settings"]
    assert stored["tax_code"] is None
    assert stored["billing_increment"] is None and stored["payment_terms_days"] == 30


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"project_id": {}}, "/project_id"),
        ({"project_id": 17}, "/project_id"),
        ({"customer_id": ["c1"]}, "/customer_id"),
        ({"member_id": True, "project_id": "p1"}, "/member_id"),
        ({"contract_id": 3.5}, "/contract_id"),
        ({"effective_from": 20240101}, "/effective_from"),
        ({"currency": {"code": "USD"}}, "/currency"),
        ({"amount": ["27.50"]}, "/amount"),
    ],
)
def test_rate_string_fields_accept_only_strings(
    client: Any, workspace: Any, extra: dict[str, Any], field: str
) -> None:
    body = {"amount": "27.50", "currency": "USD", **extra}
    response = client.post("/api/v1/rates", json=body, headers=workspace.auth)
    assert response.status_code == 422, response.json
    assert response.json["field"] == field
    assert client.get("/api/v1/rates", headers=workspace.auth).json["rates"] == []


def test_customer_settings_string_fields_accept_only_strings(client: Any, workspace: Any) -> None:
    customer_id = add_local_customer(workspace.id, "Globex")
    client.put(
        "/api/v1/mappings/client/cl1", json={"customer_id": customer_id}, headers=workspace.auth
    )
    for body, field in (({"tax_code": 0}, "/tax_code"), ({"grouping": 5}, "/grouping")):
        response = client.put(
            f"/api/v1/customers/{customer_id}/settings", json=body, headers=workspace.auth
        )
        assert response.status_code == 422, (body, response.json)
        assert response.json["field"] == field


# --- the OpenAPI document declares what the routes return ---------------------------------------
def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_operation_with_a_body_declares_400(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").json
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in _operations(doc)
        if "requestBody" in op and "400" not in op["responses"]
    ]
    assert missing == []


def test_malformed_bodies_get_a_declared_status(client: Any, workspace: Any) -> None:
    """Send a non-JSON body to every operation that takes one: the status must be documented."""
    doc = client.get("/api/v1/openapi.json").json
    undeclared = []
    for path, method, op in _operations(doc):
        if "requestBody" not in op:
            continue
        # Path items with their own servers (the provider receivers) are served from the root.
        servers = doc["paths"][path].get("servers")
        base = servers[0]["url"].rstrip("/") if servers else "/api/v1"
        url = base + re.sub(r"\{kind\}", "client", path)
        url = re.sub(r"\{[a-z_]+\}", "1", url)
        response = client.open(
            url,
            method=method.upper(),
            data=b"{not json",
            headers={**workspace.auth, "Content-Type": "application/json"},
        )
        if str(response.status_code) not in op["responses"]:
            undeclared.append(f"{method.upper()} {path} -> {response.status_code}")
    assert undeclared == []


def test_put_mapping_declares_the_409_it_returns(
    client: Any, workspace: Any, monkeypatch: Any
) -> None:
    def reconnect(*_args: Any, **_kwargs: Any) -> Any:
        raise ReconnectNeeded("refresh token expired")

    monkeypatch.setattr("mappings.service.link_customer", reconnect)
    response = client.put(
        "/api/v1/mappings/client/cl1", json={"customer_id": "c1"}, headers=workspace.auth
    )
    assert response.status_code == 409
    doc = client.get("/api/v1/openapi.json").json
    assert "409" in doc["paths"]["/mappings/{kind}/{tracker_id}"]["put"]["responses"]

"""Issue #20 item 9 (every bad field at once in a body) and the chaos script's finding (an outage
of the database or Redis answers 503 with Retry-After, not 500)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError


def test_settings_name_every_bad_field_at_once(client: Any, workspace: Any) -> None:
    response = client.patch(
        "/api/v1/settings",
        json={
            "auto_invoicing": "yes",
            "settings": {"grouping": "nope", "payment_terms_days": 999, "default_currency": "ZZZ"},
        },
        headers=workspace.auth,
    )
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json["errors"])
    assert fields == [
        "/auto_invoicing",
        "/settings/default_currency",
        "/settings/grouping",
        "/settings/payment_terms_days",
    ]


def test_rates_name_every_bad_field_at_once(client: Any, workspace: Any) -> None:
    response = client.post(
        "/api/v1/rates",
        json={"amount": "\u0663\u0664.\u0665\u0660", "currency": "ZZZ", "effective_from": "x"},
        headers=workspace.auth,
    )
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json["errors"])
    assert fields == ["/amount", "/currency", "/effective_from"]


def test_customer_settings_name_every_bad_field_at_once(client: Any, workspace: Any) -> None:
    from tests.admin.events import add_local_customer

    customer = add_local_customer(workspace.id, "Globex")
    client.put(
        "/api/v1/mappings/client/cl-1", json={"customer_id": customer}, headers=workspace.auth
    )
    response = client.put(
        f"/api/v1/customers/{customer}/settings",
        json={"grouping": "", "billing_increment": 7, "payment_terms_days": "\u0663"},
        headers=workspace.auth,
    )
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json["errors"])
    assert fields == ["/billing_increment", "/grouping", "/payment_terms_days"]


@pytest.mark.parametrize(
    "outage",
    [OperationalError("SELECT 1", {}, Exception("server closed")), RedisConnectionError("down")],
)
def test_an_outage_is_a_503_with_retry_after(
    client: Any, workspace: Any, monkeypatch: Any, admin_client: Any, outage: Exception
) -> None:
    from connector.api import rates
    from mappings import rates as rate_table

    def down(*_args: Any, **_kw: Any) -> Any:
        raise outage

    monkeypatch.setattr(rate_table, "list_rates", down)
    assert rates.rate_table is rate_table
    response = client.get("/api/v1/rates", headers=workspace.auth)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.mimetype == "application/problem+json"
    page = admin_client.get(f"/workspaces/{workspace.id}/rates")
    assert page.status_code == 503 and "Briefly unavailable" in page.get_data(as_text=True)

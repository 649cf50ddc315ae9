"""Issue #20 item 1: numbers arrive as text and are read with ASCII digits only, within what the
columns hold (``connector.validation``); anything else is a 4xx naming the field, never a 500,
never another script's digits read as a number (Arabic-Indic 3 is not customer 3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from connector import db
from connector.models import CustomerMapping
from tests.admin.events import add_local_customer
from tests.app_fixtures import csrf_token

ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
# "34.50" in Arabic-Indic digits and "27.50" in full-width ones
OTHER_SCRIPT_RATES = ("\u0663\u0664.\u0665\u0660", "\uff12\uff17.\uff15\uff10")
# Superscript two passes str.isdigit() and fails int(); Arabic-Indic and full-width digits pass
# int(); the last two are one past PostgreSQL's integer and one past any 64-bit integer.
NOT_ASCII = ("\u00b2", "\u0663", "\uff13")
TOO_BIG = ("2147483648", "9223372036854775808", "99999999999999999999")
BAD_NUMBERS = (*NOT_ASCII, *TOO_BIG, "-1", "", "1_0", "+5", "1e3", " ")


@pytest.mark.parametrize("path", ["/api/v1/approvals", "/api/v1/drafts"])
@pytest.mark.parametrize("name", ["limit", "offset"])
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_paging_with_anything_but_ascii_digits_in_range_is_a_422_naming_it(
    client: Any, workspace: Any, path: str, name: str, value: str
) -> None:
    response = client.get(f"{path}?{name}={quote(value)}", headers=workspace.auth)
    assert response.status_code == 422, (value, response.status_code)
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == f"/{name}"


def test_every_bad_query_field_is_named_at_once(client: Any, workspace: Any) -> None:
    response = client.get(
        "/api/v1/approvals?limit=%C2%B2&offset=-1&from=2026-13-01&to=&status=nope",
        headers=workspace.auth,
    )
    assert response.status_code == 422
    fields = [e["field"] for e in response.json["errors"]]
    assert sorted(fields) == ["/from", "/limit", "/offset", "/status", "/to"]
    assert response.json["field"] in fields
    for name in ("limit", "offset", "from", "to", "status"):
        assert name in response.json["detail"]


def test_paging_in_range_still_works(client: Any, workspace: Any) -> None:
    for path in ("/api/v1/approvals", "/api/v1/drafts"):
        ok = client.get(f"{path}?limit=200&offset=2147483647", headers=workspace.auth)
        assert ok.status_code == 200, ok.json
        assert (ok.json["limit"], ok.json["offset"]) == (200, 2147483647)


@pytest.mark.parametrize("customer_id", [*NOT_ASCII, *TOO_BIG, "18446744073709551616"])
def test_a_ledger_customer_id_that_is_not_a_row_id_maps_nothing(
    client: Any, workspace: Any, customer_id: str
) -> None:
    for name in ("One", "Two", "Three"):  # customer 3 exists: Arabic-Indic 3 must not reach it
        add_local_customer(workspace.id, name)
    response = client.put(
        "/api/v1/mappings/client/cl-1", json={"customer_id": customer_id}, headers=workspace.auth
    )
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.json["field"] == "/customer_id"
    assert db.session.scalars(select(CustomerMapping)).all() == []


def test_the_console_mapping_form_refuses_them_too(
    app: Any, admin_client: Any, workspace: Any
) -> None:
    for name in ("One", "Two", "Three"):
        add_local_customer(workspace.id, name)
    token = csrf_token(admin_client)
    for customer_id in (*NOT_ASCII, *TOO_BIG):
        response = admin_client.post(
            f"/workspaces/{workspace.id}/mappings",
            data={
                "csrf_token": token,
                "kind": "client",
                "tracker_id": "cl-1",
                "customer_id": customer_id,
            },
        )
        assert response.status_code in (302, 303), customer_id
    assert db.session.scalars(select(CustomerMapping)).all() == []


@pytest.mark.parametrize("ts", [*TOO_BIG, *NOT_ASCII, "1,-2", "0"])
def test_console_status_json_refuses_ids_past_the_column_with_a_problem(
    admin_client: Any, workspace: Any, ts: str
) -> None:
    response = admin_client.get(f"/workspaces/{workspace.id}/approvals/status.json?ts={quote(ts)}")
    assert response.status_code == 400, (ts, response.status_code)
    assert response.mimetype == "application/problem+json"
    assert response.json["field"] == "/ts"


def test_console_status_json_answers_known_ids(admin_client: Any, workspace: Any) -> None:
    response = admin_client.get(f"/workspaces/{workspace.id}/approvals/status.json?ts=1,2")
    assert response.status_code == 200 and response.json == {"approvals": {}}


def test_route_ids_are_ascii_digits_only(client: Any, workspace: Any) -> None:
    created = client.post(
        "/api/v1/rates", json={"amount": "10", "currency": "USD"}, headers=workspace.auth
    )
    rate_id = created.json["rate"]["id"]
    assert client.get(f"/api/v1/rates/{rate_id}", headers=workspace.auth).status_code == 200
    other_script = str(rate_id).translate(ARABIC_INDIC)
    response = client.get(f"/api/v1/rates/{quote(other_script)}", headers=workspace.auth)
    assert response.status_code == 404


def test_console_page_numbers_in_other_scripts_are_the_first_page(
    admin_client: Any, workspace: Any
) -> None:
    for path in ("drafts", "approvals", "mappings"):
        response = admin_client.get(f"/workspaces/{workspace.id}/{path}?page=%D9%A3")
        assert response.status_code == 200, path

"""Per-customer settings: validated like the workspace's (errors name the field), kept apart
between workspaces, editable from the mapping screen and the API, and used by the next draft."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connector import db
from connector.models import CustomerSettings, LocalInvoice
from mappings import customer_settings as service
from mappings import service as mapping_service
from tests.app_fixtures import csrf_token
from tests.helpers import THREE_CUSTOMERS, event, map_clients_locally

APPROVED = "timesheet_approved__three_customers"
TS_ID = "ts_8f3a2c9e1b"


def url(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/settings"


def map_shared_customer(workspace_id: int, customer_id: str = "cus_shared") -> str:
    """A mapping to a customer id that is just a string (same id usable in two workspaces)."""
    with db.session_scope() as s:
        mapping_service.set_mapping(
            s,
            workspace_id,
            kind="client",
            tracker_id="cl-shared",
            customer_id=customer_id,
            customer_name="Shared Customer",
        )
    return customer_id


@pytest.fixture
def released(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records release_holds calls (and still runs it: harmless when nothing is held)."""
    from connector import pipeline

    calls: list[int] = []
    original = pipeline.release_holds

    def spy(workspace_id: int) -> int:
        calls.append(workspace_id)
        return original(workspace_id)

    monkeypatch.setattr(pipeline, "release_holds", spy)
    return calls


# --- the service's rules -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"grouping": "weekly"}, "grouping"),
        ({"grouping": 3}, "grouping"),
        ({"billing_increment": 7}, "billing_increment"),
        ({"billing_increment": "ten"}, "billing_increment"),
        ({"billing_increment": 6.5}, "billing_increment"),
        ({"billing_increment": True}, "billing_increment"),
        ({"payment_terms_days": -1}, "payment_terms_days"),
        ({"payment_terms_days": 366}, "payment_terms_days"),
        ({"payment_terms_days": "soon"}, "payment_terms_days"),
        ({"payment_terms_days": False}, "payment_terms_days"),
        ({"tax_code": 5}, "tax_code"),
        ({"tax_code": "T" * 101}, "tax_code"),
        ({"default_currency": "EUR"}, "default_currency"),  # workspace-wide only
        ({"colour": "red"}, "colour"),
    ],
)
def test_validation_names_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(service.CustomerSettingsError) as caught:
        service.validate_overrides(values)
    assert caught.value.field == field


def test_validation_accepts_the_workspace_values_and_blanks() -> None:
    form = service.validate_overrides(
        {"grouping": "", "billing_increment": "15", "payment_terms_days": "0", "tax_code": " TAX "}
    )
    assert form == service.Overrides(None, 15, 0, "TAX")
    api = service.validate_overrides({"grouping": "detailed", "payment_terms_days": 365})
    assert api == service.Overrides("detailed", None, 365, None)
    assert service.validate_overrides({"billing_increment": None, "tax_code": "  "}).empty


# --- API -----------------------------------------------------------------------------------------
def test_api_round_trip_and_problems(client: Any, workspace: Any, released: list[int]) -> None:
    customers = map_clients_locally(workspace.id)
    globex = customers["cl-globex"]

    got = client.get(url(globex), headers=workspace.auth)
    assert got.status_code == 200
    assert got.json["customer_name"] == "Globex Corporation"
    assert got.json["overrides"] == {
        "grouping": None,
        "billing_increment": None,
        "payment_terms_days": None,
        "tax_code": None,
        "consolidation": None,
        "period": None,
        "week_start": None,
    }
    assert got.json["effective"]["grouping"] == "project"
    assert got.json["effective"]["consolidation"] == "per_timesheet"

    put = client.put(
        url(globex), json={"grouping": "task", "payment_terms_days": 14}, headers=workspace.auth
    )
    assert put.status_code == 200, put.json
    assert put.json["overrides"]["grouping"] == "task"
    assert put.json["effective"]["payment_terms_days"] == 14
    assert put.json["released"] == 0
    assert released == [workspace.id]

    for body, field in (
        ({"grouping": "weekly"}, "/grouping"),
        ({"billing_increment": 10}, "/billing_increment"),
        ({"payment_terms_days": 400}, "/payment_terms_days"),
        ({"tax_code": ["TAX"]}, "/tax_code"),
        ({"consolidation": "per_week"}, "/consolidation"),
        ({"period": "daily"}, "/period"),
        ({"week_start": "funday"}, "/week_start"),
        ({"colour": "red"}, "/colour"),
    ):
        bad = client.put(url(globex), json=body, headers=workspace.auth)
        assert bad.status_code == 422, body
        assert bad.mimetype == "application/problem+json"
        assert bad.json["field"] == field
    malformed = client.put(url(globex), data="nope", headers=workspace.auth)
    assert malformed.status_code == 400
    # A refused change stored nothing: the earlier overrides stand.
    assert client.get(url(globex), headers=workspace.auth).json["overrides"]["grouping"] == "task"

    # PUT replaces: what is omitted goes back to the workspace's setting.
    replaced = client.put(url(globex), json={"tax_code": "NON"}, headers=workspace.auth).json
    assert replaced["overrides"] == {
        "grouping": None,
        "billing_increment": None,
        "payment_terms_days": None,
        "tax_code": "NON",
        "consolidation": None,
        "period": None,
        "week_start": None,
    }

    assert client.delete(url(globex), headers=workspace.auth).status_code == 204
    assert client.delete(url(globex), headers=workspace.auth).status_code == 404
    assert client.get(url(globex), headers=workspace.auth).json["overrides"]["tax_code"] is None
    assert released == [workspace.id] * 3

    unknown = client.put(url("424242"), json={"grouping": "task"}, headers=workspace.auth)
    assert unknown.status_code == 404 and unknown.json["field"] == "/customer_id"
    assert client.get(url("424242"), headers=workspace.auth).status_code == 404
    assert client.get(url(globex)).status_code == 401


def test_workspaces_do_not_see_each_others_settings(
    client: Any, workspace: Any, make_workspace: Any
) -> None:
    other = make_workspace(tracker_workspace_id="9999")
    shared = map_shared_customer(workspace.id)
    map_shared_customer(other.id)
    a_only = map_clients_locally(workspace.id)["cl-globex"]

    assert (
        client.put(url(shared), json={"grouping": "detailed"}, headers=workspace.auth).status_code
        == 200
    )
    # Same customer id in the other workspace: its own (empty) settings.
    assert client.get(url(shared), headers=other.auth).json["overrides"]["grouping"] is None
    assert client.delete(url(shared), headers=other.auth).status_code == 404
    assert client.get(url(shared), headers=workspace.auth).json["overrides"]["grouping"] == (
        "detailed"
    )
    # A customer mapped only in A does not exist for B's token.
    assert client.get(url(a_only), headers=other.auth).status_code == 404
    assert client.put(url(a_only), json={"grouping": "task"}, headers=other.auth).status_code == 404
    rows = db.session.scalars(select(CustomerSettings)).all()
    assert [(r.workspace_id, r.customer_id) for r in rows] == [(workspace.id, shared)]


def test_openapi_documents_the_customer_settings_route(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").json
    ops = doc["paths"]["/customers/{customer_id}/settings"]
    assert set(ops) == {"get", "put", "delete"}
    assert "CustomerSettings" in doc["components"]["schemas"]


# --- the next draft uses the overrides -----------------------------------------------------------
def _globex_day_rows() -> int:
    days = event(APPROVED)["data"]["timesheet"]["daily_breakdown"]
    return sum(
        1
        for rows in days.values()
        for row in rows
        if (row.get("client") or {}).get("id") == "cl-globex"
    )


def test_overrides_change_the_next_draft(client: Any, workspace: Any, post_event: Any) -> None:
    customers = map_clients_locally(workspace.id)
    globex, initech = customers["cl-globex"], customers["cl-initech"]
    put = client.put(
        url(globex),
        json={"grouping": "detailed", "payment_terms_days": 7},
        headers=workspace.auth,
    )
    assert put.status_code == 200

    assert post_event(workspace, event(APPROVED)).status_code == 202

    body = client.get(f"/api/v1/timesheets/{TS_ID}/drafts", headers=workspace.auth).json
    by_name = {d["customer"]["name"]: d for d in body["drafts"]}
    assert set(by_name) == {name for name, _ in THREE_CUSTOMERS.values()}
    assert all(d["status"] == "drafted" for d in body["drafts"])
    # Globex: one line per day row; the others keep the workspace's grouping by project.
    globex_lines = by_name["Globex Corporation"]["lines"]
    assert len(globex_lines) == _globex_day_rows() == 3
    assert all(line["service_date"] for line in globex_lines)
    assert by_name["Globex Corporation"]["total"] == "265.84"  # same money, other lines
    for name in ("Initech", "Umbrella Ltd"):
        lines = by_name[name]["lines"]
        assert len(lines) == len({line["project_id"] for line in lines}) == 1

    ledger = {inv.customer_id: inv for inv in db.session.scalars(select(LocalInvoice))}
    assert ledger[globex].due_date - ledger[globex].issue_date == timedelta(days=7)
    assert ledger[initech].due_date - ledger[initech].issue_date == timedelta(days=30)


# --- the console page ----------------------------------------------------------------------------
def test_console_page_from_the_mapping_screen(
    admin_client: Any, workspace: Any, released: list[int]
) -> None:
    globex = map_clients_locally(workspace.id)["cl-globex"]
    screen = admin_client.get(f"/workspaces/{workspace.id}/mappings").get_data(as_text=True)
    link = f"/workspaces/{workspace.id}/customers/{globex}/settings"
    assert f'href="{link}"' in screen
    assert 'aria-label="Settings for Globex Corporation"' in screen

    page = admin_client.get(link).get_data(as_text=True)
    assert "Settings for Globex Corporation" in page
    assert "Empty = workspace default (project)" in page
    assert "Empty = workspace default (30 days)" in page

    form = {
        "grouping": "project_day",
        "billing_increment": "",
        "payment_terms_days": "500",
        "tax_code": "",
        "action": "save",
    }
    bad = admin_client.post(link, data={**form, "csrf_token": csrf_token(admin_client, link)})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert 'id="payment_terms_days-error"' in text and "between 0 and 365" in text
    assert 'value="500"' in text  # what was typed is kept
    assert db.session.scalars(select(CustomerSettings)).all() == []
    assert released == []

    form["payment_terms_days"] = "45"
    ok = admin_client.post(link, data={**form, "csrf_token": csrf_token(admin_client, link)})
    assert ok.status_code == 302 and ok.headers["Location"].endswith(link)
    row = db.session.scalars(select(CustomerSettings)).one()
    assert (row.grouping, row.billing_increment, row.payment_terms_days, row.tax_code) == (
        "project_day",
        None,
        45,
        None,
    )
    assert released == [workspace.id]
    assert "terms: 45 days" in admin_client.get(f"/workspaces/{workspace.id}/mappings").get_data(
        as_text=True
    )

    cleared = admin_client.post(
        link, data={"action": "clear", "csrf_token": csrf_token(admin_client, link)}
    )
    assert cleared.status_code == 302
    db.session.expire_all()
    assert db.session.scalars(select(CustomerSettings)).all() == []
    assert released == [workspace.id] * 2


def test_console_page_is_per_workspace(
    admin_client: Any, workspace: Any, make_workspace: Any
) -> None:
    other = make_workspace(tracker_workspace_id="9999")
    theirs = map_clients_locally(other.id)["cl-globex"]
    link = f"/workspaces/{other.id}/customers/{theirs}/settings"
    assert admin_client.get(link).status_code == 404
    # Their customer id under our workspace: not one of ours either.
    assert (
        admin_client.get(f"/workspaces/{workspace.id}/customers/{theirs}/settings").status_code
        == 404
    )
    posted = admin_client.post(
        link, data={"grouping": "task", "csrf_token": csrf_token(admin_client, link)}
    )
    assert posted.status_code == 404
    assert db.session.scalars(select(CustomerSettings)).all() == []


# --- settings before mapping (issue #18 item 5) -------------------------------------------------
def test_settings_set_before_the_mapping_are_applied_by_the_first_bill(
    client: Any, workspace: Any, post_event: Any
) -> None:
    from tests.admin.events import add_local_customer

    globex = add_local_customer(workspace.id, "Globex Corporation", "ap@globex.example")
    # Not mapped yet, but the books know it: its own terms can be set first.
    res = client.put(url(globex), json={"payment_terms_days": 7}, headers=workspace.auth)
    assert res.status_code == 200, res.json
    assert res.json["customer_name"] == "Globex Corporation"
    # A customer the books do not have is refused, naming the field.
    missing = client.put(url("424242"), json={"payment_terms_days": 7}, headers=workspace.auth)
    assert missing.status_code == 404 and missing.json["field"] == "/customer_id"

    res = client.put(
        "/api/v1/mappings/client/cl-globex", json={"customer_id": globex}, headers=workspace.auth
    )
    assert res.status_code == 200
    post_event(workspace, event(APPROVED))
    (invoice,) = db.session.scalars(select(LocalInvoice)).all()
    assert invoice.customer_id == globex
    assert invoice.due_date == invoice.issue_date + timedelta(days=7)  # the very first bill
    row = db.session.scalars(select(CustomerSettings)).one()
    assert row.books == "local"  # bound to the books the customer id belongs to

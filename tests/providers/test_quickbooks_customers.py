"""QuickBooks customers: paged listing with escaped filters, terms, creation (XSD-valid) and the
6240 duplicate-name clash offered as a link."""

from __future__ import annotations

from typing import Any

import pytest

from connector.providers import quickbooks
from connector.providers.base import DuplicateCustomer, NewCustomer, Rejected
from tests.providers.qbo_fixtures import (
    CONFIG,
    FakeQbo,
    NoLimiter,
    connect_store,
    customer_row,
    sent_json,
    validate_entity,
)


@pytest.fixture
def provider(app: Any, workspace: Any, fake: FakeQbo) -> Any:
    return quickbooks.create(
        workspace.id, connect_store(workspace.id, app), CONFIG, limiter=NoLimiter()
    )


def test_quote_escapes_for_the_query_language() -> None:
    assert quickbooks.quote("Amy's Bird Sanctuary") == "'Amy\\'s Bird Sanctuary'"
    assert quickbooks.quote("a\\b") == "'a\\\\b'"


def test_list_customers_pages_with_startposition(provider: Any, fake: FakeQbo):
    for n in range(2, 7):
        fake.customers[str(100 + n)] = customer_row(str(100 + n), f"Client {n}")
    page = provider.list_customers(limit=3)
    assert len(page.customers) == 3
    assert page.next_cursor == "4"
    assert fake.queries[-1].endswith("STARTPOSITION 1 MAXRESULTS 3")
    page2 = provider.list_customers(cursor=page.next_cursor, limit=3)
    assert fake.queries[-1].endswith("STARTPOSITION 4 MAXRESULTS 3")
    everyone = list(provider.iter_customers())
    assert len(everyone) == len(fake.customers)
    assert not {c.id for c in page.customers} & {c.id for c in page2.customers}


def test_list_customers_filters_with_an_escaped_like(provider: Any, fake: FakeQbo):
    page = provider.list_customers(query="amy's")
    assert [c.name for c in page.customers] == ["Amy's Bird Sanctuary"]
    assert page.customers[0].email == "Birds@Intuit.com"
    assert page.customers[0].currency == "USD"
    assert "WHERE DisplayName LIKE '%amy\\'s%'" in fake.queries[-1]
    assert page.next_cursor is None


def test_get_customer_resolves_currency_and_terms(provider: Any, fake: FakeQbo):
    customer = provider.get_customer("1")
    assert customer.currency == "USD"
    assert customer.payment_terms_days == 30
    assert provider.get_customer("58").currency == "GBP"
    assert provider.get_customer("404") is None  # QuickBooks 610 Object Not Found
    assert provider.get_customer("not-a-number") is None


def test_create_customer_sends_a_valid_customer(provider: Any, fake: FakeQbo):
    created = provider.create_customer(
        NewCustomer(name=" Globex Ltd ", email="ap@globex.test", currency="gbp", tracker_id="c-9")
    )
    assert created.name == "Globex Ltd"
    assert created.currency == "GBP"
    (call,) = fake.calls("POST", "/customer")
    body = sent_json(call)
    validate_entity("Customer", body)
    assert body == {
        "DisplayName": "Globex Ltd",
        "PrimaryEmailAddr": {"Address": "ap@globex.test"},
        "CurrencyRef": {"value": "GBP"},
        "Notes": "Created by timesheet-invoicer for tracker client c-9.",
    }
    assert "requestid=tsi-cust-" in call.request.url


def test_create_customer_without_optional_fields(provider: Any, fake: FakeQbo):
    provider.create_customer(NewCustomer(name="Initech"))
    body = fake.created_bodies["customer"][0]
    validate_entity("Customer", body)
    assert body == {"DisplayName": "Initech"}
    with pytest.raises(Rejected):
        provider.create_customer(NewCustomer(name="   "))


def test_duplicate_name_offers_the_existing_customer(provider: Any, fake: FakeQbo):
    with pytest.raises(DuplicateCustomer) as info:
        provider.create_customer(NewCustomer(name="Amy's Bird Sanctuary"))
    assert info.value.code == "6240"
    assert info.value.existing is not None
    assert info.value.existing.id == "1"
    assert "DisplayName = 'Amy\\'s Bird Sanctuary'" in fake.queries[-1]


def test_duplicate_name_held_by_a_vendor_has_nothing_to_link(provider: Any, fake: FakeQbo):
    import json

    from tests.providers.qbo_fixtures import FAULT_6240

    fake.inject(
        "POST",
        "customer",
        lambda r: (400, {"Content-Type": "application/json"}, json.dumps(FAULT_6240)),
    )
    with pytest.raises(DuplicateCustomer) as info:
        provider.create_customer(NewCustomer(name="Robertson & Associates"))
    assert info.value.existing is None
    assert "vendor or employee" in info.value.message


def test_service_item_uses_the_configured_income_account(provider: Any, fake: FakeQbo):
    provider.store.update_meta(income_account_id="79", service_item_name="Consulting hours")
    item_id = provider.service_item_id()
    body = fake.created_bodies["item"][0]
    validate_entity("Item", body)
    assert body == {
        "Name": "Consulting hours",
        "Type": "Service",
        "IncomeAccountRef": {"value": "79"},
    }
    assert provider.store.meta()["service_item_id"] == item_id
    assert not [q for q in fake.queries if "FROM Account" in q]


def test_service_item_without_income_account_is_rejected(provider: Any, fake: FakeQbo):
    fake.accounts = []
    with pytest.raises(Rejected, match="Income account"):
        provider.service_item_id()


def test_foreign_currency_customer_with_multicurrency_off_is_refused_in_plain_words(
    provider: Any, fake: FakeQbo
):
    fake.multicurrency = False
    with pytest.raises(Rejected) as info:
        provider.create_customer(NewCustomer(name="Globex GmbH", currency="eur"))
    message = str(info.value)
    assert "multicurrency" in message.lower() and "EUR" in message and "USD" in message
    assert fake.calls("POST", "/customer") == []  # refused before anything was created
    assert any("FROM Preferences" in q for q in fake.queries)


def test_home_currency_customer_with_multicurrency_off_is_created(provider: Any, fake: FakeQbo):
    fake.multicurrency = False
    created = provider.create_customer(NewCustomer(name="Initech", currency="USD"))
    assert created.currency == "USD"
    body = fake.created_bodies["customer"][0]
    validate_entity("Customer", body)


def test_foreign_currency_customer_with_multicurrency_on_names_its_currency(
    provider: Any, fake: FakeQbo
):
    created = provider.create_customer(NewCustomer(name="Tokyo KK", currency="JPY"))
    assert created.currency == "JPY"
    body = fake.created_bodies["customer"][0]
    validate_entity("Customer", body)
    assert body["CurrencyRef"] == {"value": "JPY"}


def test_create_customers_cli_with_multicurrency_off_maps_the_home_currency_client_and_says_why_not_the_others(  # noqa: E501
    app: Any, make_workspace: Any, post_event: Any, fake: FakeQbo
):
    from sqlalchemy import select

    from connector import db
    from connector.models import CustomerMapping
    from tests.helpers import event

    app.config.update(CONFIG)
    ws = make_workspace(provider="quickbooks")
    connect_store(ws.id, app)
    doc = event("timesheet_approved__three_customers")
    for rows in doc["data"]["timesheet"]["daily_breakdown"].values():
        for row in rows:
            if (row.get("client") or {}).get("id") == "cl-initech":
                row["rate"] = {"amount": "95.00", "currency": "EUR"}
    post_event(ws, doc)
    fake.multicurrency = False

    res = app.test_cli_runner().invoke(args=["mappings", "create-customers", str(ws.id)])

    assert res.exit_code != 0
    assert "Initech: QuickBooks has multicurrency turned off" in res.output
    assert "billed in EUR" in res.output
    mapped = {
        m.tracker_id: m.customer_currency for m in db.session.scalars(select(CustomerMapping))
    }
    assert mapped == {"cl-globex": "USD", "cl-umbrella": "USD"}  # the others still mapped
    assert [b["DisplayName"] for b in fake.created_bodies["customer"]] == [
        "Globex Corporation",
        "Umbrella Ltd",
    ]

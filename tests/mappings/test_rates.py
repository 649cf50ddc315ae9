"""Rate validation: each refusal names the field to fix."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connector import db
from mappings import rates


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"currency": "USD"}, "amount"),
        ({"amount": 27.5, "currency": "USD"}, "amount"),  # a JSON number: money as text only
        ({"amount": "-1", "currency": "USD"}, "amount"),
        ({"amount": "1e3", "currency": "USD"}, "amount"),
        ({"amount": "1.123456789", "currency": "USD"}, "amount"),
        ({"amount": "0.0000001", "currency": "USD"}, "amount"),  # a slip, not a price (#21)
        ({"amount": "27.12345", "currency": "USD"}, "amount"),
        ({"amount": "27.50", "currency": "US"}, "currency"),
        ({"amount": "27.50", "currency": "12$"}, "currency"),
        ({"amount": "27.50", "currency": "USD", "effective_from": "16/11/2026"}, "effective_from"),
        ({"amount": "27.50", "currency": "USD", "member_id": "m1"}, "project_id"),
        ({"amount": "1", "currency": "USD", "project_id": "p1", "customer_id": "c"}, "customer_id"),
        ({"amount": "1", "currency": "USD", "contract_id": "k", "customer_id": "c"}, "customer_id"),
    ],
)
def test_parse_rate_refuses_with_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(rates.RateError) as info:
        rates.parse_rate(data)
    assert info.value.field == field


@pytest.mark.parametrize("amount", ["27.3333", "27.50000", "0.0001", "100"])
def test_parse_rate_takes_up_to_four_decimals(amount: str) -> None:
    assert rates.parse_rate({"amount": amount, "currency": "USD"}).amount == Decimal(amount)


def test_too_many_decimals_says_why() -> None:
    with pytest.raises(rates.RateError) as info:
        rates.parse_rate({"amount": "0.0000001", "currency": "USD"})
    assert "more than 4 decimals" in info.value.message and "0.0000001" in info.value.message


def test_parse_rate_normalises() -> None:
    rate = rates.parse_rate(
        {
            "amount": " 27.50 ",
            "currency": "usd",
            "effective_from": "2026-11-01",
            "member_id": "m1",
            "project_id": "p1",
            "customer_id": "",
        }
    )
    assert rate.amount == Decimal("27.50")
    assert rate.currency == "USD"
    assert rate.effective_from == date(2026, 11, 1)
    assert rate.customer_id is None
    assert rates.scope_of(rate) == "member_project"


def test_rate_table_crud_and_conflicts(app: Any, workspace: Any) -> None:
    s = db.session
    first = rates.create_rate(s, workspace.id, {"amount": "100", "currency": "USD"})
    later = rates.create_rate(
        s, workspace.id, {"amount": "120", "currency": "USD", "effective_from": "2026-12-01"}
    )
    assert rates.scope_of(first) == "workspace"
    with pytest.raises(rates.RateError) as info:
        rates.create_rate(s, workspace.id, {"amount": "90", "currency": "USD"})
    assert info.value.field == "effective_from"
    assert "already has a rate" in info.value.message

    rates.update_rate(
        s,
        workspace.id,
        later.id,
        {"amount": "125", "currency": "USD"} | {"effective_from": "2026-12-01"},
    )
    assert rates.get_rate(s, workspace.id, later.id).amount == Decimal("125")
    assert rates.get_rate(s, workspace.id + 999, later.id) is None  # other workspace: not found
    assert rates.delete_rate(s, workspace.id, first.id)
    assert not rates.delete_rate(s, workspace.id, first.id)
    s.commit()
    assert [r.id for r in rates.list_rates(s, workspace.id)] == [later.id]


def test_a_customer_rate_needs_books_to_belong_to(app: Any, workspace: Any) -> None:
    from connector.models import Workspace

    s = db.session
    s.get(Workspace, workspace.id).provider = "quickbooks"  # chosen, never connected
    with pytest.raises(rates.RateError) as info:
        rates.create_rate(s, workspace.id, {"amount": "1", "currency": "USD", "customer_id": "6"})
    assert (
        info.value.field == "customer_id" and "connect the accounting system" in info.value.message
    )
    row = rates.create_rate(s, workspace.id, {"amount": "1", "currency": "USD", "project_id": "p"})
    assert row.books is None  # names no customer: belongs to no books

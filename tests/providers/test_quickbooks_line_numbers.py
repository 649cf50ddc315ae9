"""QuickBooks' own quantity rule, now in its folder: Qty x UnitPrice rounded half-up to 2 decimals
equals the line's Amount (else error 6070), with at most 7 decimals on each."""

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connector import billing
from connector.money import line_amount, minor_units
from connector.providers.base import DraftLine
from connector.providers.quickbooks import payloads

CURRENCIES = ("USD", "EUR", "JPY", "KWD", "CLF")


def _line(minutes: int, rate: Decimal, currency: str) -> DraftLine:
    amount = line_amount(minutes, rate, currency)
    return DraftLine("x", billing.line_quantity(minutes, rate, amount, currency), rate, amount)


def _places(value: Decimal) -> int:
    return max(0, -value.as_tuple().exponent)


@settings(max_examples=1000)
@given(st.data(), st.integers(0, 100_000), st.sampled_from(CURRENCIES))
def test_every_line_passes_the_6070_check(data, minutes: int, currency: str) -> None:
    cap = 10 ** (billing.QUANTITY_DECIMALS - minor_units(currency))
    places = data.draw(st.integers(0, billing.QUANTITY_DECIMALS))
    rate = data.draw(st.decimals(min_value=0, max_value=cap, places=places, allow_nan=False))
    billing.check_rate(rate, currency)
    line = _line(minutes, rate, currency)
    quantity, unit_price = payloads.line_numbers(line, currency)
    assert _places(quantity) <= 7 and _places(unit_price) <= 7
    compare = Decimal(1).scaleb(-max(minor_units(currency), 2))
    assert (quantity * unit_price).quantize(compare, rounding=ROUND_HALF_UP) == line.amount


def test_our_hours_and_rate_are_sent_as_they_are_when_they_pass() -> None:
    line = _line(530, Decimal("27.50"), "USD")
    assert payloads.line_numbers(line, "USD") == (line.quantity, line.unit_price)


def test_a_yen_line_is_checked_at_two_decimals() -> None:
    # 30 min at 1001 JPY/h is exactly 500.5 -> 501 JPY. Billing's 0.50 h x 1001 rounds to 501 at
    # yen precision, but QuickBooks compares at 2 decimals (500.50 != 501.00: error 6070), so
    # QuickBooks gets 501 / 1001 at 7 decimals: 0.5004995 x 1001 = 500.9999995 -> 501.00.
    line = _line(30, Decimal("1001"), "JPY")
    assert line.quantity == Decimal("0.50")
    assert payloads.line_numbers(line, "JPY") == (Decimal("0.5004995"), Decimal("1001"))

"""Money helpers: the one rounding rule (half-up), minor units, strict parsing."""

from decimal import ROUND_HALF_UP, Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.money import (
    format_money,
    from_minor_units,
    line_amount,
    minor_units,
    parse_amount,
    quantize_money,
    to_minor_units,
)

D = Decimal


@pytest.mark.parametrize(
    ("currency", "places"),
    [("USD", 2), ("EUR", 2), ("HUF", 2), ("JPY", 0), ("KRW", 0), ("VND", 0), ("CLP", 0),
     ("ISK", 0), ("BHD", 3), ("KWD", 3), ("OMR", 3), ("JOD", 3), ("TND", 3), ("CLF", 4)],
)  # fmt: skip
def test_minor_units(currency: str, places: int) -> None:
    assert minor_units(currency) == places


@pytest.mark.parametrize("bad", ["usd", "US", "USDX", "", "12A", None])
def test_currency_must_be_iso_code(bad: object) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        minor_units(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.465", "USD", "2.47"),  # half-up; half-even would give 2.46
        ("2.475", "USD", "2.48"),
        ("2.4649", "USD", "2.46"),
        ("0.005", "USD", "0.01"),
        ("832.5", "JPY", "833"),
        ("10.2875", "KWD", "10.288"),
        ("-2.465", "USD", "-2.47"),  # half away from zero for credits
        ("7", "USD", "7.00"),
    ],
)
def test_quantize_money_half_up(amount: str, currency: str, expected: str) -> None:
    result = quantize_money(D(amount), currency)
    assert result == D(expected)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("minutes", "rate", "currency", "expected"),
    [
        (50, "27.50", "USD", "22.92"),  # 22.91666...
        (1, "27.50", "USD", "0.46"),  # 0.458333...
        (6, "24.65", "USD", "2.47"),  # exactly 2.465: half-up
        (60, "10.00", "USD", "10.00"),
        (1, "10.00", "USD", "0.17"),  # 0.1666...
        (50, "1000", "JPY", "833"),  # 833.33...
        (30, "1001", "JPY", "501"),  # exactly 500.5: half-up
        (50, "12.345", "KWD", "10.288"),  # exactly 10.2875: half-up at 3 decimals
        (0, "27.50", "USD", "0.00"),
        (525, "0", "USD", "0.00"),
    ],
)
def test_line_amount(minutes: int, rate: str, currency: str, expected: str) -> None:
    result = line_amount(minutes, D(rate), currency)
    assert str(result) == expected


def test_line_amount_is_not_computed_from_rounded_hours() -> None:
    # 50 min = 0.8333 h; 0.83 h x 27.50 would be 22.83.
    assert line_amount(50, D("27.50"), "USD") != quantize_money(D("0.83") * D("27.50"), "USD")


def test_line_amount_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="negative"):
        line_amount(-1, D("1"), "USD")
    with pytest.raises(TypeError):
        line_amount(1, 27.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        line_amount(1, D("-1"), "USD")
    with pytest.raises(ValueError, match="finite"):
        line_amount(1, D("NaN"), "USD")


def test_minor_unit_round_trip() -> None:
    assert to_minor_units(D("22.92"), "USD") == 2292
    assert to_minor_units(D("833"), "JPY") == 833
    assert to_minor_units(D("10.288"), "KWD") == 10288
    assert str(from_minor_units(2292, "USD")) == "22.92"
    assert str(from_minor_units(833, "JPY")) == "833"
    assert str(from_minor_units(5, "KWD")) == "0.005"
    assert str(from_minor_units(0, "USD")) == "0.00"


def test_to_minor_units_refuses_to_round() -> None:
    with pytest.raises(ValueError, match="decimals"):
        to_minor_units(D("2.465"), "USD")
    with pytest.raises(ValueError, match="decimals"):
        to_minor_units(D("1.5"), "JPY")


def test_format_money() -> None:
    assert format_money(D("27.5"), "USD") == "27.50 USD"
    assert format_money(D("833"), "JPY") == "833 JPY"
    assert format_money(D("2.465"), "USD") == "2.47 USD"
    assert format_money(D("1E+3"), "USD") == "1000.00 USD"
    assert format_money(D("1.5"), "KWD") == "1.500 KWD"


@pytest.mark.parametrize(("text", "expected"), [("27.50", "27.50"), (" 10 ", "10"), ("0", "0")])
def test_parse_amount(text: str, expected: str) -> None:
    assert str(parse_amount(text)) == expected


@pytest.mark.parametrize(
    "bad", ["", " ", "-1", "+1", "1e3", "NaN", "nan", "inf", "Infinity", "1,000.00", ".5", "5.",
            "1.2.3", "12 USD", "0x10"],
)  # fmt: skip
def test_parse_amount_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(bad)


@pytest.mark.parametrize("bad", [27.5, 1, None, D("1")])
def test_parse_amount_rejects_non_strings(bad: object) -> None:
    with pytest.raises(TypeError):
        parse_amount(bad)  # type: ignore[arg-type]


_REFERENCE = Context(prec=100, rounding=ROUND_HALF_UP)
_CURRENCIES = st.sampled_from(["USD", "JPY", "KWD", "EUR", "CLF"])


@given(
    minutes=st.integers(0, 10**7),
    rate=st.decimals(min_value=0, max_value=10**6, places=7, allow_nan=False),
    currency=_CURRENCIES,
)
def test_line_amount_matches_decimal_reference(minutes: int, rate: Decimal, currency: str) -> None:
    exact = _REFERENCE.divide(_REFERENCE.multiply(D(minutes), rate), D(60))
    expected = exact.quantize(D(1).scaleb(-minor_units(currency)), context=_REFERENCE)
    assert line_amount(minutes, rate, currency) == expected


@given(minor=st.integers(-(10**15), 10**15), currency=_CURRENCIES)
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    amount = from_minor_units(minor, currency)
    assert to_minor_units(amount, currency) == minor
    assert quantize_money(amount, currency) == amount

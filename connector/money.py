"""Decimal money helpers shared by the billing engine and the provider connectors.

One rounding rule everywhere: ROUND_HALF_UP (half away from zero) to the currency's ISO 4217
minor unit. Python's Decimal defaults to banker's rounding (ROUND_HALF_EVEN), which invoices do
not use, so every rounding here names its rule explicitly. Floats are rejected, never converted.
"""

from __future__ import annotations

import re
from decimal import MAX_PREC, ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, Rounded
from typing import Final

DEFAULT_MINOR_UNITS: Final = 2

# ISO 4217 exponents that differ from the default of 2 (HUF is 2 in ISO 4217, even though
# some payment providers treat it as 0: we follow ISO and let a provider adapter deviate).
_EXCEPTIONS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
            "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip

_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
_AMOUNT_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# quantize() honours the context's precision; a wide private context keeps large amounts from
# raising or being rounded a second time by the caller's (possibly modified) thread context.
_CTX: Final = Context(prec=60, rounding=ROUND_HALF_UP)
_EXACT: Final = Context(prec=MAX_PREC, traps=[InvalidOperation, Inexact, Rounded])


def check_currency(currency: str) -> str:
    """Return the currency code if it is three upper-case letters, else raise ValueError."""
    if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency):
        raise ValueError(f"currency must be a 3-letter upper-case ISO 4217 code, got {currency!r}")
    return currency


def minor_units(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (2 unless ISO 4217 says otherwise)."""
    return _EXCEPTIONS.get(check_currency(currency), DEFAULT_MINOR_UNITS)


def check_decimal(value: Decimal, what: str = "amount") -> Decimal:
    """Reject floats, ints posing as money, NaN and infinities with a clear message."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}")
    return value


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in exact integer arithmetic."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def decimal_from_scaled(scaled: int, places: int) -> Decimal:
    """scaled x 10**-places as an exact Decimal with exactly `places` decimals."""
    # scaleb only moves the exponent; the exact context traps if it ever had to round.
    return Decimal(scaled).scaleb(-places, _EXACT)


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit with ROUND_HALF_UP (2.465 USD -> 2.47)."""
    check_decimal(amount)
    exponent = Decimal((0, (1,), -minor_units(currency)))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP, context=_CTX)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Exact integer minor units (22.92 USD -> 2292, 833 JPY -> 833).

    Raises ValueError if the amount has more decimals than the currency allows: amounts sent on
    the wire must already be rounded (quantize_money), never silently rounded a second time.
    """
    check_decimal(amount)
    places = minor_units(currency)
    numerator, denominator = amount.as_integer_ratio()
    scaled = numerator * 10**places
    if scaled % denominator:
        raise ValueError(f"{amount} has more than {places} decimals for {currency}")
    return scaled // denominator


def from_minor_units(minor: int, currency: str) -> Decimal:
    """Decimal amount from integer minor units (2292 USD -> Decimal('22.92'))."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise TypeError(f"minor units must be an int, got {type(minor).__name__}")
    return decimal_from_scaled(minor, minor_units(currency))


def line_amount(minutes: int, rate: Decimal, currency: str) -> Decimal:
    """minutes x hourly rate / 60, rounded half-up once, to the minor unit.

    Computed from minutes in exact integer arithmetic: 50 min is 0.8333... h, so rounding the
    hours first (0.83 h x 27.50 = 22.83) would differ from the true 22.9166... -> 22.92.
    """
    if not isinstance(minutes, int) or isinstance(minutes, bool):
        raise TypeError(f"minutes must be an int, got {type(minutes).__name__}")
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, got {minutes}")
    check_decimal(rate, "rate")
    if rate < 0:
        raise ValueError(f"rate must not be negative, got {rate}")
    places = minor_units(currency)
    numerator, denominator = rate.as_integer_ratio()
    minor = round_half_up_div(minutes * numerator * 10**places, denominator * 60)
    return decimal_from_scaled(minor, places)


def format_money(amount: Decimal, currency: str) -> str:
    """'27.50 USD' / '833 JPY': rounded half-up to the minor unit, plain digits, code after."""
    return f"{quantize_money(amount, currency):f} {currency}"


def parse_amount(text: str) -> Decimal:
    """Parse a plain non-negative decimal string such as '27.50'.

    Only digits with an optional fractional part are accepted: floats (the type), exponents,
    signs, NaN, infinities, thousands separators and empty strings are rejected, because each
    is either lossy or ambiguous for money.
    """
    if not isinstance(text, str):
        raise TypeError(f"amount must be given as a string, got {type(text).__name__} {text!r}")
    stripped = text.strip()
    if not _AMOUNT_RE.fullmatch(stripped):
        raise ValueError(f"not a plain non-negative decimal amount: {text!r}")
    try:
        return Decimal(stripped)
    except InvalidOperation as exc:  # unreachable with the regex above; kept as a guard
        raise ValueError(f"not a decimal amount: {text!r}") from exc


def line_numbers(
    hours: Decimal,
    unit_price: Decimal,
    amount: Decimal,
    *,
    quantity_decimals: int,
    price_decimals: int | None,
    amount_decimals: int,
    rounding: str | None = ROUND_HALF_UP,
) -> tuple[Decimal, Decimal]:
    """A (quantity, unit price) pair whose product, rounded to ``amount_decimals``, is ``amount``.

    Every system that shows "hours x rate" recomputes the line from the two and compares (or
    replaces) our amount, each with its own decimals: so the billing engine (the rate fixed) and
    each provider (its declared decimals) ask here. ``rounding`` is the rule the system rounds
    the product with; ``None`` when it is not documented: the product must then lie strictly
    within half a unit of ``amount``, which every rule rounds the same way.

    Tried in order, the first that fits wins: the hours rounded half-up to 2, 3, ...
    ``quantity_decimals`` decimals with the unit price (the most readable pair); the quantity
    nearest ``amount / unit_price`` at ``quantity_decimals``; then, when the price may change
    (``price_decimals`` given), the hours with the unit price nearest ``amount / hours``; last
    1 x ``amount``. With the price fixed and nothing fitting, ValueError.
    """
    half = Decimal(5).scaleb(-amount_decimals - 1)
    target = amount.quantize(Decimal(1).scaleb(-amount_decimals), context=_CTX)

    def fits(quantity: Decimal, price: Decimal) -> bool:
        product = _CTX.multiply(quantity, price)
        if rounding is None:
            return abs(_CTX.subtract(product, target)) < half
        return product.quantize(target, rounding=rounding, context=_CTX) == target

    def at(value: Decimal, places: int) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=_CTX)

    price_ok = price_decimals is None or _places(unit_price) <= price_decimals
    if price_ok:
        for places in range(min(2, quantity_decimals), quantity_decimals + 1):
            quantity = at(hours, places)
            if fits(quantity, unit_price):
                return quantity, unit_price
        if unit_price:
            nearest = at(_CTX.divide(amount, unit_price), quantity_decimals)
            step = Decimal(1).scaleb(-quantity_decimals)
            for quantity in (nearest, nearest - step, nearest + step):
                if quantity >= 0 and fits(quantity, unit_price):
                    return quantity, unit_price
    if price_decimals is None:
        raise ValueError(f"no {quantity_decimals}-decimal quantity gives {amount} at {unit_price}")
    quantity = at(hours, quantity_decimals)
    if quantity:
        nearest = at(_CTX.divide(amount, quantity), price_decimals)
        step = Decimal(1).scaleb(-price_decimals)
        for offset in (0, -1, 1, -2, 2):
            price = nearest + step * offset
            if price >= 0 and fits(quantity, price):
                return quantity, price
    return Decimal(1), amount


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else MAX_PREC

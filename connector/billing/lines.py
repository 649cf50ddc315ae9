"""A customer's priced lines: quantity, unit price and amount to the cent, their descriptions,
and the order they are listed in."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple

from connector.billing.accumulators import CustomerAccumulator, DisplayNames
from connector.billing.checks import QUANTITY_DECIMALS
from connector.billing.records import Member, PlannedLine
from connector.money import decimal_from_scaled, line_amount, line_numbers, minor_units


def format_duration(minutes: int) -> str:
    """'8 h 50 min', '8 h', '50 min', '0 min'."""
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def period_text(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def line_quantity(minutes: int, unit_price: Decimal, amount: Decimal, currency: str) -> Decimal:
    """Hours such that quantity x unit_price rounds (half-up) to ``amount`` in ``currency``.

    The most readable such quantity, at most QUANTITY_DECIMALS decimals (money.line_numbers
    with the rate fixed); check_rate() bounds the rate so that one always exists. A provider
    with other decimals or another comparison re-derives its own pair from these numbers.
    """
    hours = Decimal(minutes) / 60
    quantity, _ = line_numbers(
        hours,
        unit_price,
        amount,
        quantity_decimals=QUANTITY_DECIMALS,
        price_decimals=None,
        amount_decimals=minor_units(currency),
    )
    return quantity


def _canonical_rate(amount: Decimal, currency: str) -> Decimal:
    # One representation per rate value, whatever the input spelled (27.5, 27.50, 27.500):
    # at least the currency's minor units, more only when the rate really has them.
    places = minor_units(currency)
    normalized = amount.normalize()
    exponent = normalized.as_tuple().exponent
    assert isinstance(exponent, int)
    scale = max(places, -exponent)
    numerator, denominator = amount.as_integer_ratio()
    return decimal_from_scaled(numerator * 10**scale // denominator, scale)


class Priced(NamedTuple):
    """What one (billed minutes, rate, currency) prices to; computed once per bill() call."""

    unit_price: Decimal
    amount: Decimal
    quantity: Decimal
    duration: str  # format_duration(billed minutes)


def build_lines(
    acc: CustomerAccumulator,
    member: Member,
    names: DisplayNames,
    pricing: dict[tuple[int, Decimal, str], Priced],
    unit_prices: dict[tuple[Decimal, str], Decimal],
) -> tuple[PlannedLine, ...]:
    """The customer's lines, in a total order on everything that can tell two lines apart.

    The "detailed" grouping builds about one line per day row, and the same minutes and rate,
    the same project/task title and the same period recur thousands of times: each derived
    value is computed once and reused (pricing once per bill() call, as it depends only on the
    minutes, the rate and the currency; titles and periods once per customer).
    """
    customer_id, currency = acc.customer.id, acc.customer.currency
    # (project id, task id) -> (project name, task name, description up to the period)
    titles: dict[tuple[str, str | None], tuple[str, str | None, str]] = {}
    periods: dict[tuple[date, date], str] = {}
    lines: list[PlannedLine] = []
    keys: list[tuple] = []
    acc_lines = acc.lines
    for billed, tracked, first, last, project_id, task_id, rate, source in zip(
        acc_lines.billed,
        acc_lines.tracked,
        acc_lines.first,
        acc_lines.last,
        acc_lines.project_id,
        acc_lines.task_id,
        acc_lines.rate,
        acc_lines.source,
        strict=True,
    ):
        priced = pricing.get((billed, rate, currency))
        if priced is None:
            # A few hundred rates meet a few dozen billed durations: canonicalize each rate once.
            unit_price = unit_prices.get((rate, currency))
            if unit_price is None:
                unit_price = unit_prices[rate, currency] = _canonical_rate(rate, currency)
            amount = line_amount(billed, unit_price, currency)
            quantity = line_quantity(billed, unit_price, amount, currency)
            priced = Priced(unit_price, amount, quantity, format_duration(billed))
            pricing[billed, rate, currency] = priced
        unit_price, amount, quantity, duration = priced
        titled = titles.get((project_id, task_id))
        if titled is None:
            project_name = names.projects[customer_id, project_id][1]
            task_name = None if task_id is None else names.tasks[customer_id, task_id][1]
            title = f"{project_name} ({task_name})" if task_name else project_name
            titled = titles[project_id, task_id] = (
                project_name,
                task_name,
                f"{member.name} — {title} — ",
            )
        project_name, task_name, prefix = titled
        period = periods.get((first, last))
        if period is None:
            period = periods[first, last] = period_text(first, last)
        description = f"{prefix}{period} — {duration}"
        # Positional, in field order: with 14 fields, keywords cost ~25% more per PlannedLine and
        # the detailed grouping builds ~100k of them.
        line = PlannedLine(
            description,
            billed,  # minutes
            quantity,
            unit_price,
            amount,
            first if first == last else None,  # service_date
            first,  # date_from
            last,  # date_to
            project_id,
            project_name,
            task_name,
            source,  # rate_source
            tracked,  # tracked_minutes
            task_id,
        )
        lines.append(line)
        # Sort key built from the locals rather than read back from the PlannedLine: a total order
        # on everything that can tell two lines apart, so output never depends on row order (task
        # ids may be None, hence the "" stand-ins).
        keys.append(
            (
                project_name,
                project_id,
                task_name or "",
                task_id or "",
                first,
                last,
                unit_price,
                source,
                billed,
                tracked,  # two day rows rounded up to the same billed minutes still differ here
                description,
            )
        )
    # A stable sort of positions (equal keys keep insertion order, as sorting the lines by key
    # would): no (key, line) pairs to allocate, and PlannedLines are never compared.
    order = sorted(range(len(lines)), key=keys.__getitem__)
    return tuple([lines[i] for i in order])

"""What billing refuses: rates it cannot price exactly, unknown settings, bad rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from connector.billing.records import (
    BILLING_INCREMENTS,
    GROUPINGS,
    BillingSettings,
    Customer,
    TimeRow,
    TimesheetInput,
)
from connector.money import check_currency, check_decimal, minor_units

# The finest quantity and rate billing computes with: hours x rate must round to each line's
# amount exactly, and an hour's 1/60 steps need several decimals to get there. Providers with
# fewer decimals re-derive their own pair (money.line_numbers, from their declared decimals).
QUANTITY_DECIMALS: Final = 7


def check_rate(amount: Decimal, currency: str, what: str = "rate") -> None:
    """A rate must be a non-negative Decimal that billing can price with an exact quantity.

    At most QUANTITY_DECIMALS decimals, and at most 10 ** (QUANTITY_DECIMALS - minor units) per
    hour: above that a QUANTITY_DECIMALS-decimal quantity can no longer hit every amount.
    """
    check_decimal(amount, what)
    places = minor_units(currency)
    if amount < 0:
        raise ValueError(f"{what} must not be negative, got {amount} {currency}")
    numerator, denominator = amount.as_integer_ratio()
    if numerator * 10**QUANTITY_DECIMALS % denominator:
        raise ValueError(f"{what} has more than {QUANTITY_DECIMALS} decimals: {amount}")
    if amount > 10 ** (QUANTITY_DECIMALS - places):
        raise ValueError(f"{what} {amount} {currency} per hour is above the supported maximum")


def check_customer(customer: Customer) -> None:
    if not isinstance(customer, Customer):
        raise TypeError(f"mappings must map to Customer objects, got {customer!r}")
    check_currency(customer.currency)
    if customer.grouping is not None and customer.grouping not in GROUPINGS:
        raise ValueError(f"customer {customer.id}: unknown grouping {customer.grouping!r}")
    if customer.billing_increment not in BILLING_INCREMENTS:
        raise ValueError(
            f"customer {customer.id}: billing increment must be one of {BILLING_INCREMENTS}"
        )


def check_settings(settings: BillingSettings) -> None:
    if settings.grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {settings.grouping!r}; expected one of {GROUPINGS}")
    if settings.billing_increment not in BILLING_INCREMENTS:
        raise ValueError(f"billing increment must be one of {BILLING_INCREMENTS}")


def check_row(row: TimeRow, timesheet: TimesheetInput) -> None:
    minutes = row.minutes
    if not isinstance(minutes, int) or isinstance(minutes, bool):
        raise ValueError(f"minutes must be an int, got {minutes!r} on {row.date} {row.project_id}")
    if minutes < 0:
        raise ValueError(
            f"negative minutes ({minutes}) for project {row.project_name} ({row.project_id}) "
            f"on {row.date} in timesheet {timesheet.id}"
        )
    if not timesheet.date_from <= row.date <= timesheet.date_to:
        raise ValueError(
            f"row dated {row.date} is outside timesheet {timesheet.id} "
            f"({timesheet.date_from}..{timesheet.date_to})"
        )
    if row.billable not in (None, True, False):
        raise ValueError(f"billable must be True, False or None, got {row.billable!r}")
    if row.rate is not None:
        check_currency(row.rate.currency)
        check_rate(row.rate.amount, row.rate.currency, f"rate on {row.date} {row.project_id}")

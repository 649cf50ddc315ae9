"""What billing refuses: rates QuickBooks cannot carry exactly, unknown settings, bad rows."""

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

# QuickBooks accepts Qty and UnitPrice with at most 7 decimal places.
QBO_MAX_DECIMALS: Final = 7
# QuickBooks compares Qty x UnitPrice with Amount rounded to 2 decimals (error 6070), so quantities
# are checked at max(currency minor units, 2) decimals: that also satisfies 0-decimal currencies.
QBO_COMPARE_DECIMALS: Final = 2


def check_rate(amount: Decimal, currency: str, what: str = "rate") -> None:
    """A rate must be a non-negative Decimal that QuickBooks can carry with an exact Qty.

    At most 7 decimals (QBO UnitPrice), and at most 10 ** (7 - c) per hour where c =
    max(minor units, 2): above that a 7-decimal quantity can no longer hit every amount.
    """
    check_decimal(amount, what)
    places = max(minor_units(currency), QBO_COMPARE_DECIMALS)
    if amount < 0:
        raise ValueError(f"{what} must not be negative, got {amount} {currency}")
    numerator, denominator = amount.as_integer_ratio()
    if numerator * 10**QBO_MAX_DECIMALS % denominator:
        raise ValueError(f"{what} has more than {QBO_MAX_DECIMALS} decimals: {amount}")
    if amount > 10 ** (QBO_MAX_DECIMALS - places):
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

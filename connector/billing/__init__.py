"""Pure billing engine: one approved timesheet in, one draft (or hold) per customer out.

No I/O, no framework imports: everything is passed in, so the same inputs always give the same
result and the engine can be tested exhaustively. See docs/billing.md for the rules.

    records.py       what billing reads (TimesheetInput, Mappings, BillingSettings) and answers
                     (BillingResult: DraftPlan with PlannedLine, Hold)
    rates.py         RateEntry and RateTable: the rate in force, most specific scope first
    engine.py        bill(): day rows -> each customer's lines or holds -> drafts
    accumulators.py  what one bill() call gathers per customer and project while it walks
    lines.py         pricing a line to the cent (line_quantity), its description and order
    holds.py         the words of a hold (no rate, currency mismatch, unmapped project)
    keys.py          the content revision and the drafts' idempotency keys
    checks.py        what billing refuses (check_rate, settings, rows)
    periods.py       the periods of per_period consolidation

Callers import from ``connector.billing``; the modules are its inside.
"""

from __future__ import annotations

from connector.billing.checks import QUANTITY_DECIMALS, check_rate
from connector.billing.engine import bill, resolve_customer
from connector.billing.keys import draft_key, timesheet_revision
from connector.billing.lines import format_duration, line_quantity
from connector.billing.periods import CONSOLIDATIONS, PERIODS, WEEKDAYS, period_bounds
from connector.billing.rates import RateEntry, RateTable
from connector.billing.records import (
    BILLING_INCREMENTS,
    GROUPINGS,
    HOLD_CURRENCY_MISMATCH,
    HOLD_NEEDS_MAPPING,
    HOLD_NEEDS_RATE,
    SOURCE_CUSTOMER,
    SOURCE_MEMBER_PROJECT,
    SOURCE_PROJECT,
    SOURCE_ROW,
    SOURCE_WORKSPACE,
    BillingResult,
    BillingSettings,
    Client,
    Customer,
    DraftPlan,
    Hold,
    Mappings,
    Member,
    Money,
    PlannedLine,
    Task,
    TimeRow,
    TimesheetInput,
)

__all__ = [
    "BILLING_INCREMENTS",
    "CONSOLIDATIONS",
    "GROUPINGS",
    "HOLD_CURRENCY_MISMATCH",
    "HOLD_NEEDS_MAPPING",
    "HOLD_NEEDS_RATE",
    "PERIODS",
    "QUANTITY_DECIMALS",
    "SOURCE_CUSTOMER",
    "SOURCE_MEMBER_PROJECT",
    "SOURCE_PROJECT",
    "SOURCE_ROW",
    "SOURCE_WORKSPACE",
    "WEEKDAYS",
    "BillingResult",
    "BillingSettings",
    "Client",
    "Customer",
    "DraftPlan",
    "Hold",
    "Mappings",
    "Member",
    "Money",
    "PlannedLine",
    "RateEntry",
    "RateTable",
    "Task",
    "TimeRow",
    "TimesheetInput",
    "bill",
    "check_rate",
    "draft_key",
    "format_duration",
    "line_quantity",
    "period_bounds",
    "resolve_customer",
    "timesheet_revision",
]

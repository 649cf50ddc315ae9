"""What billing reads and what it answers: the value types, their settings and the codes they
carry (hold reasons, rate sources). Plain frozen records, no behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final

GROUPINGS: Final = ("project", "project_day", "task", "detailed")
BILLING_INCREMENTS: Final = (None, 1, 6, 15)


HOLD_NEEDS_MAPPING: Final = "needs_mapping"
HOLD_NEEDS_RATE: Final = "needs_rate"
HOLD_CURRENCY_MISMATCH: Final = "currency_mismatch"

SOURCE_ROW: Final = "row"
SOURCE_MEMBER_PROJECT: Final = "member_project"
SOURCE_PROJECT: Final = "project"
SOURCE_CUSTOMER: Final = "customer"
SOURCE_WORKSPACE: Final = "workspace"


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """Tracker-side customer (e.g. a tracker's client or project viewer)."""

    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str  # upper-case ISO 4217 code


@dataclass(frozen=True, slots=True)
class TimeRow:
    date: date
    project_id: str
    project_name: str
    minutes: int
    contract_id: str | None = None
    billable: bool | None = None  # None = billable
    rate: Money | None = None
    client: Client | None = None
    task: Task | None = None


@dataclass(frozen=True, slots=True)
class TimesheetInput:
    """One approved timesheet as billing reads it (trackers normalize into this; the stored
    row is models.Timesheet)."""

    id: str
    member: Member
    date_from: date
    date_to: date
    rows: tuple[TimeRow, ...]
    approved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """An accounting-system customer that rows resolve to."""

    id: str
    name: str
    currency: str
    grouping: str | None = None  # None = the workspace's setting
    billing_increment: int | None = None  # None = the workspace's setting


@dataclass(frozen=True, slots=True)
class Mappings:
    projects: Mapping[str, Customer]  # tracker project id -> customer (most specific)
    clients: Mapping[str, Customer]  # tracker client id -> customer


@dataclass(frozen=True, slots=True)
class BillingSettings:
    workspace_id: str
    grouping: str = "project"  # "project" | "project_day" | "task" | "detailed"
    billing_increment: int | None = None  # None, 1, 6 or 15: round each day's row UP


@dataclass(frozen=True, slots=True)
class PlannedLine:
    """One priced line of a DraftPlan (the pipeline stores it as JSON on models.Draft.lines and
    sends it as a providers DraftLine)."""

    description: str
    minutes: int  # billed minutes (after the billing increment)
    quantity: Decimal  # hours; quantize(quantity x unit_price) == amount
    unit_price: Decimal  # the hourly rate used
    amount: Decimal
    service_date: date | None  # the day, when the line covers a single day
    date_from: date
    date_to: date
    project_id: str
    project_name: str
    task_name: str | None
    rate_source: str  # "row" | "member_project" | "project" | "customer" | "workspace"
    tracked_minutes: int = 0  # minutes as tracked, before the billing increment
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class DraftPlan:
    """What bill() plans for one customer: the pipeline records it as a models.Draft row and
    sends it as a providers DraftInvoice."""

    key: str
    customer: Customer
    currency: str
    lines: tuple[PlannedLine, ...]
    total: Decimal  # sum of the rounded line amounts
    minutes: int  # billed minutes
    tracked_minutes: int = 0


@dataclass(frozen=True, slots=True)
class Hold:
    reason: str  # "needs_mapping" | "needs_rate" | "currency_mismatch"
    subject_key: str  # "customer:<id>", or "project:<id>" for unmapped rows
    customer: Customer | None
    message: str
    minutes: int  # tracked minutes of the rows behind this reason
    project_ids: tuple[str, ...]
    client_ids: tuple[str, ...]
    key: str  # the draft key the held draft would get (a stable key for unmapped projects too)
    member_id: str = ""
    currencies: tuple[str, ...] = ()  # for currency_mismatch: the rate currencies found


@dataclass(frozen=True, slots=True)
class BillingResult:
    revision: str
    drafts: tuple[DraftPlan, ...]
    holds: tuple[Hold, ...]
    excluded_minutes: int  # non-billable rows
    excluded_rows: int
    # Tracked billable minutes behind holds, each held customer/project counted once (a customer
    # with two hold reasons has two Hold objects but its minutes are held once).
    held_minutes: int = 0

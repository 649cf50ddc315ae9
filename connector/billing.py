"""Pure billing engine: one approved timesheet in, one draft (or hold) per customer out.

No I/O, no framework imports: everything is passed in, so the same inputs always give the same
result and the engine can be tested exhaustively. See docs/billing.md for the rules.
"""

from __future__ import annotations

import hashlib
from base64 import b32encode
from bisect import bisect_right
from calendar import monthrange
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import pairwise
from typing import Final, NamedTuple

from connector.money import (
    check_currency,
    check_decimal,
    decimal_from_scaled,
    line_amount,
    minor_units,
    round_half_up_div,
)

GROUPINGS: Final = ("project", "project_day", "task", "detailed")
BILLING_INCREMENTS: Final = (None, 1, 6, 15)
# per_timesheet: each approval gets its own drafts; per_period: one open draft per customer and
# period, every approval in the period appends its lines to it (see docs/billing.md).
CONSOLIDATIONS: Final = ("per_timesheet", "per_period")
PERIODS: Final = ("weekly", "semi_monthly", "monthly")
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# QuickBooks accepts Qty and UnitPrice with at most 7 decimal places.
QBO_MAX_DECIMALS: Final = 7
# QuickBooks compares Qty x UnitPrice with Amount rounded to 2 decimals (error 6070), so quantities
# are checked at max(currency minor units, 2) decimals: that also satisfies 0-decimal currencies.
QBO_COMPARE_DECIMALS: Final = 2

HOLD_NEEDS_MAPPING: Final = "needs_mapping"
HOLD_NEEDS_RATE: Final = "needs_rate"
HOLD_CURRENCY_MISMATCH: Final = "currency_mismatch"

SOURCE_ROW: Final = "row"
SOURCE_MEMBER_PROJECT: Final = "member_project"
SOURCE_PROJECT: Final = "project"
SOURCE_CUSTOMER: Final = "customer"
SOURCE_WORKSPACE: Final = "workspace"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """Tracker-side customer (e.g. a WebWork project viewer)."""

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
class RateEntry:
    """An hourly rate. Its scope is implied by which fields are set:

    contract_id (optionally narrowed by member_id/project_id) or member_id+project_id
    -> "member_project"; project_id -> "project"; customer_id -> "customer"; none -> "workspace".
    Other combinations are rejected rather than silently ignored.
    """

    amount: Decimal
    currency: str
    effective_from: date | None = None  # None = since forever
    member_id: str | None = None
    project_id: str | None = None
    contract_id: str | None = None
    customer_id: str | None = None


class _Rate(NamedTuple):
    """A resolved hourly rate: what RateTable.find() answers, or a row's own rate."""

    amount: Decimal
    currency: str
    source: str  # SOURCE_ROW ... SOURCE_WORKSPACE


_NEVER: Final = date.min
_WORKSPACE_SCOPE: Final = ("workspace",)


@dataclass(frozen=True, slots=True)
class RateTable:
    """Rate entries plus an index built once (entries are validated on construction)."""

    entries: tuple[RateEntry, ...] = ()
    # scope key -> (effective_from days, entries, their rates), sorted by day (then
    # member/project filter).
    _index: dict[tuple, tuple[list[date], list[RateEntry], list[_Rate]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index: dict[tuple, list[tuple[date, RateEntry]]] = {}
        for entry in self.entries:
            check_rate(entry.amount, entry.currency, "rate entry")
            index.setdefault(_scope_key(entry), []).append((entry.effective_from or _NEVER, entry))
        scopes: dict[tuple, tuple[list[date], list[RateEntry], list[_Rate]]] = {}
        for key, items in index.items():
            items.sort(key=lambda item: (item[0], _entry_filter(item[1])))
            for (day_a, a), (day_b, b) in pairwise(items):
                same = day_a == day_b and _entry_filter(a) == _entry_filter(b)
                if same and (a.amount != b.amount or a.currency != b.currency):
                    raise ValueError(
                        f"two different rates for the same scope {key} from {day_a}: "
                        f"{a.amount} {a.currency} and {b.amount} {b.currency}"
                    )
            # Days and entries side by side: find() bisects the plain day list (no key function).
            # Each entry's answer is built once here: bill() keeps ~10k timelines of them, and
            # shared objects keep the garbage collector's work per call small.
            source = _SCOPE_SOURCES[key[0]]
            scopes[key] = (
                [day for day, _ in items],
                [entry for _, entry in items],
                [_Rate(entry.amount, entry.currency, source) for _, entry in items],
            )
        object.__setattr__(self, "_index", scopes)

    def find(
        self,
        day: date,
        member_id: str,
        project_id: str,
        contract_id: str | None,
        customer_id: str,
    ) -> _Rate | None:
        """The rate in force on `day` in the most specific scope that has one, or None."""
        index = self._index
        for key in _scopes(member_id, project_id, contract_id, customer_id):
            scope = index.get(key)
            if scope is None:
                continue
            days, entries, found = scope
            # Latest effective_from <= day; a scope with no entry in force yet falls through.
            # Walking indices down avoids copying the in-force prefix (this runs per day row).
            for i in range(bisect_right(days, day) - 1, -1, -1):
                entry = entries[i]
                if (entry.member_id is None or entry.member_id == member_id) and (
                    entry.project_id is None or entry.project_id == project_id
                ):
                    return found[i]
        return None

    def timeline(
        self, member_id: str, project_id: str, contract_id: str | None, customer_id: str
    ) -> tuple[tuple[date, ...], tuple[_Rate | None, ...]]:
        """find() for every day at once: (days, rates) with
        find(day, ...) == rates[bisect_right(days, day)].

        The answer can only change on an effective_from of an entry in one of the scopes find()
        consults, so one find() per such day covers the whole calendar. Before the first of them
        no entry is in force anywhere, hence rates[0] is None.
        """
        changes: set[date] = set()
        for key in _scopes(member_id, project_id, contract_id, customer_id):
            scope = self._index.get(key)
            if scope is not None:
                changes.update(scope[0])
        days = tuple(sorted(changes))
        found = (self.find(day, member_id, project_id, contract_id, customer_id) for day in days)
        return days, (None, *found)


def _scopes(
    member_id: str, project_id: str, contract_id: str | None, customer_id: str
) -> tuple[tuple, ...]:
    # Most specific first. ("contract", None) is never indexed (_scope_key), so a row without a
    # contract falls through to the member/project scope.
    return (
        ("contract", contract_id),
        ("member_project", member_id, project_id),
        ("project", project_id),
        ("customer", customer_id),
        _WORKSPACE_SCOPE,
    )


# The rate source a scope's entries report, by the scope key's kind.
_SCOPE_SOURCES: Final = {
    "contract": SOURCE_MEMBER_PROJECT,
    "member_project": SOURCE_MEMBER_PROJECT,
    "project": SOURCE_PROJECT,
    "customer": SOURCE_CUSTOMER,
    "workspace": SOURCE_WORKSPACE,
}


def _entry_filter(entry: RateEntry) -> tuple[str, str]:
    return (entry.member_id or "", entry.project_id or "")


def _scope_key(entry: RateEntry) -> tuple:
    if entry.contract_id is not None:
        if entry.customer_id is not None:
            raise ValueError(f"a contract rate cannot also name a customer: {entry}")
        return ("contract", entry.contract_id)
    if entry.member_id is not None:
        if entry.project_id is None or entry.customer_id is not None:
            raise ValueError(
                f"a member rate needs a project (or a contract) and no customer: {entry}"
            )
        return ("member_project", entry.member_id, entry.project_id)
    if entry.project_id is not None:
        if entry.customer_id is not None:
            raise ValueError(f"a project rate cannot also name a customer: {entry}")
        return ("project", entry.project_id)
    if entry.customer_id is not None:
        return ("customer", entry.customer_id)
    return _WORKSPACE_SCOPE


@dataclass(frozen=True, slots=True)
class BillingSettings:
    workspace_id: str
    grouping: str = "project"  # "project" | "project_day" | "task" | "detailed"
    billing_increment: int | None = None  # None, 1, 6 or 15: round each day's row UP


# --------------------------------------------------------------------------- outputs


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


# --------------------------------------------------------------------------- keys


def _canonical_decimal(value: Decimal) -> str:
    # 27.5 and 27.50 are the same rate; 1E+2 and 100 the same amount.
    return format(value.normalize(), "f")


def timesheet_revision(timesheet: TimesheetInput) -> str:
    """Content hash of the member, the period and the rows (as a multiset: order-independent).

    approved_at is deliberately left out: re-approving identical content keeps the same keys.
    """
    member = timesheet.member
    header = repr(
        (
            "timesheet-revision-v1",
            member.id,
            member.name,
            member.email,
            timesheet.date_from.isoformat(),
            timesheet.date_to.isoformat(),
        )
    )
    # Each token is repr() of the tuple (date ISO string, project id, project name, minutes,
    # contract id, billable, None | (canonical rate, currency), None | (client id, name, email),
    # None | (task id, name)). It is spelled out below with !r, which is exactly what repr() of
    # a tuple does to each item, so no tuple is built per row; the date, shared by many rows, is
    # formatted once per day. test_revision_token_format pins this against the tuple form.
    day_reprs: dict[date, str] = {}
    tokens = []
    for row in timesheet.rows:
        day = day_reprs.get(row.date)
        if day is None:
            day = day_reprs[row.date] = repr(row.date.isoformat())
        rate, client, task = row.rate, row.client, row.task
        rate_part = (
            "None" if rate is None else repr((_canonical_decimal(rate.amount), rate.currency))
        )
        client_part = (
            "None" if client is None else f"({client.id!r}, {client.name!r}, {client.email!r})"
        )
        task_part = "None" if task is None else f"({task.id!r}, {task.name!r})"
        tokens.append(
            f"({day}, {row.project_id!r}, {row.project_name!r}, {row.minutes!r}, "
            f"{row.contract_id!r}, {row.billable!r}, {rate_part}, {client_part}, {task_part})"
        )
    tokens.sort()
    digest = hashlib.sha256()
    digest.update(header.encode())
    for token in tokens:
        # repr() escapes newlines, so "\n" cannot occur inside a token: the join is unambiguous.
        digest.update(b"\n")
        digest.update(token.encode())
    return "rev1-" + digest.hexdigest()[:40]


def draft_key(workspace_id: str, timesheet_id: str, revision: str, customer_id: str) -> str:
    """Deterministic idempotency key: 'ti-' + 40 base32 chars of a sha256 (43 chars, [a-z2-7-])."""
    material = repr(("draft-key-v1", workspace_id, timesheet_id, revision, customer_id))
    encoded = b32encode(hashlib.sha256(material.encode()).digest()).decode().rstrip("=").lower()
    return "ti-" + encoded[:40]


# --------------------------------------------------------------------------- validation


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


def _check_customer(customer: Customer) -> None:
    if not isinstance(customer, Customer):
        raise TypeError(f"mappings must map to Customer objects, got {customer!r}")
    check_currency(customer.currency)
    if customer.grouping is not None and customer.grouping not in GROUPINGS:
        raise ValueError(f"customer {customer.id}: unknown grouping {customer.grouping!r}")
    if customer.billing_increment not in BILLING_INCREMENTS:
        raise ValueError(
            f"customer {customer.id}: billing increment must be one of {BILLING_INCREMENTS}"
        )


def _check_settings(settings: BillingSettings) -> None:
    if settings.grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {settings.grouping!r}; expected one of {GROUPINGS}")
    if settings.billing_increment not in BILLING_INCREMENTS:
        raise ValueError(f"billing increment must be one of {BILLING_INCREMENTS}")


def _check_row(row: TimeRow, timesheet: TimesheetInput) -> None:
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


# --------------------------------------------------------------------------- formatting


def format_duration(minutes: int) -> str:
    """'8 h 50 min', '8 h', '50 min', '0 min'."""
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def _period(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def line_quantity(minutes: int, unit_price: Decimal, amount: Decimal, currency: str) -> Decimal:
    """Hours such that round(quantity x unit_price) == amount, at max(minor units, 2) decimals.

    Tries minutes / 60 rounded half-up to 2, 3, ... 7 decimals (the most readable quantity that
    multiplies back to the amount), then amount / unit_price at 7 decimals rounded half-up, down
    and up. check_rate() bounds the rate so that the last step always succeeds.
    """
    places = minor_units(currency)
    compare = max(places, QBO_COMPARE_DECIMALS)
    price_num, price_den = unit_price.as_integer_ratio()
    amount_num, amount_den = amount.as_integer_ratio()
    # amount at `compare` decimals as an integer (amount is already rounded to `places`).
    target = amount_num * 10**compare // amount_den

    def matches(scaled_qty: int, qty_places: int) -> bool:
        product = round_half_up_div(
            scaled_qty * price_num * 10**compare, price_den * 10**qty_places
        )
        return product == target

    for qty_places in range(2, QBO_MAX_DECIMALS + 1):
        scaled = round_half_up_div(minutes * 10**qty_places, 60)
        if matches(scaled, qty_places):
            return decimal_from_scaled(scaled, qty_places)
    if price_num:
        numerator = amount_num * price_den * 10**QBO_MAX_DECIMALS
        denominator = amount_den * price_num
        nearest = round_half_up_div(numerator, denominator)
        for scaled in (nearest, numerator // denominator, -(-numerator // denominator)):
            if matches(scaled, QBO_MAX_DECIMALS):
                return decimal_from_scaled(scaled, QBO_MAX_DECIMALS)
    raise ValueError(f"no {QBO_MAX_DECIMALS}-decimal quantity gives {amount} at {unit_price}")


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


# --------------------------------------------------------------------------- engine


class _Priced(NamedTuple):
    """What one (billed minutes, rate, currency) prices to; computed once per bill() call."""

    unit_price: Decimal
    amount: Decimal
    quantity: Decimal
    duration: str  # format_duration(billed minutes)


def _build_lines(
    acc: _CustomerAcc,
    member: Member,
    names: _Names,
    pricing: dict[tuple[int, Decimal, str], _Priced],
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
            priced = _Priced(unit_price, amount, quantity, format_duration(billed))
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
            period = periods[first, last] = _period(first, last)
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


def _customer_holds(acc: _CustomerAcc, member: Member, key: str, names: _Names) -> list[Hold]:
    customer = acc.customer
    subject = f"customer:{customer.id}"
    held_text = f"The whole draft for {customer.name} ({customer.id}) is held."
    holds = []
    if acc.missing:
        project_ids = tuple(sorted(acc.missing))
        missing = [acc.missing[p] for p in project_ids]
        minutes = sum(m.tracked for m in missing)
        first = min(m.first for m in missing)
        last = max(m.last for m in missing)
        client_ids = tuple(sorted(set().union(*(m.client_ids for m in missing))))
        holds.append(
            Hold(
                reason=HOLD_NEEDS_RATE,
                subject_key=subject,
                customer=customer,
                message=(
                    f"No rate for {member.name} on project(s) "
                    f"{', '.join(names.project_label(customer.id, p) for p in project_ids)} "
                    f"({format_duration(minutes)}, {_period(first, last)}): add a rate for the "
                    f"member and project, the project, the customer or the workspace. {held_text}"
                ),
                minutes=minutes,
                project_ids=project_ids,
                client_ids=client_ids,
                key=key,
                member_id=member.id,
            )
        )
    if acc.mismatch:
        parts = []
        minutes = 0
        project_set: set[str] = set()
        for currency, source in sorted(acc.mismatch):
            per_project = acc.mismatch[(currency, source)]
            minutes += sum(per_project.values())
            project_set.update(per_project)
            projects = ", ".join(names.project_label(customer.id, p) for p in sorted(per_project))
            parts.append(f"{projects} priced in {currency} ({source} rate)")
        holds.append(
            Hold(
                reason=HOLD_CURRENCY_MISMATCH,
                subject_key=subject,
                customer=customer,
                message=(
                    f"{customer.name} ({customer.id}) is billed in {customer.currency}, but "
                    f"{member.name}'s time on {'; '.join(parts)}. Amounts are never converted: "
                    f"use a {customer.currency} rate or change the customer. {held_text}"
                ),
                minutes=minutes,
                project_ids=tuple(sorted(project_set)),
                client_ids=tuple(sorted(acc.client_ids)),
                key=key,
                member_id=member.id,
                currencies=tuple(sorted({c for c, _ in acc.mismatch})),
            )
        )
    return holds


class _Lines:
    """One customer's lines while day rows accumulate into them, a list per field: line i is
    (billed[i], tracked[i], first[i], ...), and ``index`` maps a line key to its i.

    Columns rather than an object per line: the garbage collector tracks every instance of a
    class, dataclass or NamedTuple (it untracks only exact tuples of plain values), and the
    ~100k of them in the "detailed" grouping cost two more full collections per bill() call
    (15-20% slower on the 100,000-row benchmark). Lists of ints, dates and strings add no
    tracked object per line.
    """

    __slots__ = (
        "billed",
        "first",
        "index",
        "last",
        "project_id",
        "rate",
        "source",
        "task_id",
        "tracked",
    )

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}  # line key (per grouping) -> line number
        self.billed: list[int] = []  # each day row rounded up to the increment, then summed
        self.tracked: list[int] = []
        self.first: list[date] = []
        self.last: list[date] = []
        self.project_id: list[str] = []
        self.task_id: list[str | None] = []  # None unless the grouping is "task" or "detailed"
        self.rate: list[Decimal] = []  # the hourly rate's amount, as found
        self.source: list[str] = []  # the rate's source

    def add(
        self,
        key: tuple,
        billed: int,
        tracked: int,
        day: date,
        project_id: str,
        task_id: str | None,
        rate: Decimal,
        source: str,
    ) -> None:
        i = self.index.get(key)
        if i is None:
            self.index[key] = len(self.billed)
            self.billed.append(billed)
            self.tracked.append(tracked)
            self.first.append(day)
            self.last.append(day)
            self.project_id.append(project_id)
            self.task_id.append(task_id)
            self.rate.append(rate)
            self.source.append(source)
            return
        self.billed[i] += billed
        self.tracked[i] += tracked
        if day < self.first[i]:
            self.first[i] = day
        elif day > self.last[i]:
            self.last[i] = day

    def clear(self) -> None:
        self.index.clear()
        for column in (
            self.billed,
            self.tracked,
            self.first,
            self.last,
            self.project_id,
            self.task_id,
            self.rate,
            self.source,
        ):
            column.clear()


@dataclass(slots=True)
class _MissingRate:
    """A project's time that found no rate, for the customer's needs_rate hold."""

    tracked: int
    first: date
    last: date
    client_ids: set[str]

    def add(self, tracked: int, day: date, client_id: str | None) -> None:
        self.tracked += tracked
        if day < self.first:
            self.first = day
        elif day > self.last:
            self.last = day
        if client_id is not None:
            self.client_ids.add(client_id)


@dataclass(slots=True)
class _Unmapped:
    """A project's time that resolved to no customer, for its needs_mapping hold."""

    tracked: int = 0
    client_ids: set[str] = field(default_factory=set)


class _CustomerAcc:
    """Mutable per-customer accumulator, private to one bill() call."""

    __slots__ = (
        "client_ids",
        "customer",
        "grouping",
        "increment",
        "lines",
        "mismatch",
        "missing",
        "tracked",
    )

    def __init__(self, customer: Customer, settings: BillingSettings) -> None:
        self.customer = customer
        # The customer's own setting, else the workspace's.
        self.grouping = customer.grouping or settings.grouping
        self.increment = customer.billing_increment or settings.billing_increment
        self.lines = _Lines()
        self.missing: dict[str, _MissingRate] = {}  # project_id -> its time without a rate
        # (rate currency, source) -> {project_id: tracked minutes}
        self.mismatch: dict[tuple[str, str], dict[str, int]] = {}
        self.tracked = 0
        self.client_ids: set[str] = set()


class _Names:
    """The display names on the day rows, kept per owning customer (None for unmapped rows) so
    that another customer's rows can never rename a project on this customer's draft.

    The name from the latest day (ties: the greatest name) wins, so that renames mid-period
    resolve the same way whatever the row order.
    """

    __slots__ = ("clients", "projects", "tasks")

    def __init__(self) -> None:
        # (owner customer id or None, project/client/task id) -> (day, name)
        self.projects: dict[tuple[str | None, str], tuple[date, str]] = {}
        self.clients: dict[tuple[str | None, str], tuple[date, str]] = {}
        self.tasks: dict[tuple[str | None, str], tuple[date, str]] = {}

    def project_label(self, owner: str | None, project_id: str) -> str:
        return f"{self.projects[owner, project_id][1]} ({project_id})"

    def client_label(self, owner: str | None, client_id: str) -> str:
        return f"{self.clients[owner, client_id][1]} ({client_id})"


def _latest_name(names: dict, key: tuple, day: date, name: str) -> None:
    # A function, not a _Names method: it runs up to three times per day row.
    candidate = (day, name)
    current = names.get(key)
    if current is None or candidate > current:
        names[key] = candidate


def resolve_customer(mappings: Mappings, project_id: str, client_id: str | None) -> Customer | None:
    """The customer a row of ``project_id`` for ``client_id`` bills to: project, then client."""
    customer = mappings.projects.get(project_id)
    if customer is None and client_id is not None:
        customer = mappings.clients.get(client_id)
    return customer


def bill(
    timesheet: TimesheetInput, settings: BillingSettings, mappings: Mappings, rates: RateTable
) -> BillingResult:
    """Split one timesheet into one draft (or holds) per customer. Pure and deterministic.

    In four phases: sum the rows per day row; resolve each day row's customer and rate and add
    it to that customer's lines (or to what holds it); build each customer's draft or holds;
    hold the projects that resolve to no customer.
    """
    _check_settings(settings)
    if timesheet.date_from > timesheet.date_to:
        raise ValueError(f"timesheet {timesheet.id} ends before it starts")
    member = timesheet.member
    revision = timesheet_revision(timesheet)

    day_rows, excluded_minutes, excluded_rows = _day_rows(timesheet)
    customers, unmapped, names = _accumulate(day_rows, member.id, settings, mappings, rates)
    # Every day row is accumulated: drop them before ~100k lines are built, so that the garbage
    # collector's full passes during that do not walk them again.
    del day_rows

    key_of = partial(draft_key, settings.workspace_id, timesheet.id, revision)
    drafts, holds = _customer_drafts(customers, names, member, key_of)
    holds += _unmapped_holds(unmapped, names, member, key_of)
    # Each held customer or project once, however many reasons hold it.
    held_minutes = sum(acc.tracked for acc in customers.values() if acc.missing or acc.mismatch)
    held_minutes += sum(project.tracked for project in unmapped.values())
    return BillingResult(
        revision=revision,
        drafts=tuple(drafts),
        holds=tuple(holds),
        excluded_minutes=excluded_minutes,
        excluded_rows=excluded_rows,
        held_minutes=held_minutes,
    )


# A day row: (day, project_id, contract_id, client_id, task_id, row rate, project_name,
# client_name, task_name). An exact tuple, not a NamedTuple: the garbage collector stops tracking
# exact tuples of plain values, and ~100k tracked keys made the project and task groupings
# 14-16% slower on the 100,000-row benchmark (scripts/bench_billing.py).
_DayRow = tuple[
    date, str, str | None, str | None, str | None, Money | None, str, str | None, str | None
]


def _day_rows(timesheet: TimesheetInput) -> tuple[dict[_DayRow, int], int, int]:
    """Check every row, count the non-billable ones, and sum the other minutes per day row.

    Rows alike in day, project, contract, client, task and row rate are one day row, so that the
    billing increment rounds each day's time once, however the tracker split it. The display
    names ride along so that they can be chosen per customer later. Returns the minutes per day
    row, and the excluded minutes and rows.
    """
    day_rows: dict[_DayRow, int] = {}
    excluded_minutes = excluded_rows = 0
    for row in timesheet.rows:
        _check_row(row, timesheet)
        if row.billable is False:
            excluded_minutes += row.minutes
            excluded_rows += 1
            continue
        if not row.minutes:
            continue
        client, task = row.client, row.task
        key = (
            row.date,
            row.project_id,
            row.contract_id,
            None if client is None else client.id,
            None if task is None else task.id,
            row.rate,
            row.project_name,
            None if client is None else client.name,
            None if task is None else task.name,
        )
        day_rows[key] = day_rows.get(key, 0) + row.minutes
    return day_rows, excluded_minutes, excluded_rows


def _accumulate(
    day_rows: dict[_DayRow, int],
    member_id: str,
    settings: BillingSettings,
    mappings: Mappings,
    rates: RateTable,
) -> tuple[dict[str, _CustomerAcc], dict[str, _Unmapped], _Names]:
    """Resolve each day row's customer and rate, and add it to one of that customer's lines.

    Resolving per day row, not per line, keeps customers apart and lets a rate change
    mid-period split a line. A day row with no rate, or a rate in another currency, goes to what
    holds its customer instead, and one with no customer to what holds its project; once a
    customer is held, its day rows are no longer added to lines, since any hold holds its whole
    draft. Returns the customers by id, the unmapped projects by id, and the display names.
    """
    customers: dict[str, _CustomerAcc] = {}
    unmapped: dict[str, _Unmapped] = {}
    names = _Names()
    project_names, client_names, task_names = names.projects, names.clients, names.tasks
    resolved: dict[tuple[str, str | None], Customer | None] = {}
    # (project, contract, customer) -> RateTable.timeline(): one bisect per day row instead of a
    # find() per distinct (day, project, contract, customer), which is nearly every day row.
    timelines: dict[tuple, tuple[tuple[date, ...], tuple[_Rate | None, ...]]] = {}
    # Each distinct timeline once: ~10k keys share a few hundred of them, and fewer objects that
    # the garbage collector tracks (_Rate is a NamedTuple) means fewer full collections.
    distinct_timelines: dict[tuple, tuple[tuple[date, ...], tuple[_Rate | None, ...]]] = {}
    for (
        day,
        project_id,
        contract_id,
        client_id,
        task_id,
        row_rate,
        project_name,
        client_name,
        task_name,
    ), minutes in day_rows.items():
        # Whose time: the customer (cached per project and client), then the names it shows.
        resolve_key = (project_id, client_id)
        if resolve_key in resolved:
            customer = resolved[resolve_key]
        else:
            customer = resolve_customer(mappings, project_id, client_id)
            resolved[resolve_key] = customer
        owner = None if customer is None else customer.id
        _latest_name(project_names, (owner, project_id), day, project_name)
        if client_id is not None:
            _latest_name(client_names, (owner, client_id), day, client_name)
        if task_id is not None:
            _latest_name(task_names, (owner, task_id), day, task_name)
        if customer is None:
            group = unmapped.get(project_id)
            if group is None:
                group = unmapped[project_id] = _Unmapped()
            group.tracked += minutes
            if client_id is not None:
                group.client_ids.add(client_id)
            continue

        acc = customers.get(customer.id)
        if acc is None:
            _check_customer(customer)
            acc = customers[customer.id] = _CustomerAcc(customer, settings)
        elif acc.customer is not customer and acc.customer != customer:  # `is`: the usual case
            raise ValueError(f"customer id {customer.id} is mapped to two different customers")
        acc.tracked += minutes
        if client_id is not None:
            acc.client_ids.add(client_id)

        # At what rate: the row's own, else the rate table's on that day.
        rate: _Rate | None
        if row_rate is not None:
            rate = _Rate(row_rate.amount, row_rate.currency, SOURCE_ROW)
        else:
            timeline_key = (project_id, contract_id, customer.id)
            timeline = timelines.get(timeline_key)
            if timeline is None:
                timeline = rates.timeline(member_id, project_id, contract_id, customer.id)
                timeline = timelines[timeline_key] = distinct_timelines.setdefault(
                    timeline, timeline
                )
            change_days, found = timeline
            rate = found[bisect_right(change_days, day)]
        if rate is None:
            missing = acc.missing.get(project_id)
            if missing is None:
                missing = acc.missing[project_id] = _MissingRate(0, day, day, set())
            missing.add(minutes, day, client_id)
            continue
        amount, currency, source = rate
        if currency != customer.currency:
            per_project = acc.mismatch.setdefault((currency, source), {})
            per_project[project_id] = per_project.get(project_id, 0) + minutes
            continue
        if acc.missing or acc.mismatch:
            continue  # the draft is held anyway; no need to build lines

        # On which line: rounded up to the increment, keyed by the customer's grouping.
        increment, grouping = acc.increment, acc.grouping
        billed = -(-minutes // increment) * increment if increment else minutes
        if grouping == "project":
            line_key: tuple = (project_id, amount, source)
        elif grouping == "project_day":
            line_key = (project_id, day, amount, source)
        elif grouping == "task":
            line_key = (project_id, task_id, amount, source)
        else:  # detailed: one line per (aggregated) day row
            line_key = (day, project_id, contract_id, client_id, task_id, amount, source)
        # Only task-level groupings name a task: a project line spans several tasks.
        line_task = task_id if grouping in ("task", "detailed") else None
        acc.lines.add(line_key, billed, minutes, day, project_id, line_task, amount, source)
    return customers, unmapped, names


def _customer_drafts(
    customers: dict[str, _CustomerAcc],
    names: _Names,
    member: Member,
    key_of: Callable[[str], str],
) -> tuple[list[DraftPlan], list[Hold]]:
    """Each customer's draft, or its holds, in customer id order.

    A customer with any hold reason gets one Hold per reason and no draft: a draft without the
    held time would under-bill the customer. The others get a draft of their own lines only
    (none if they have no lines). Held or not, the key is the one the draft has or would have.
    """
    drafts: list[DraftPlan] = []
    holds: list[Hold] = []
    # Shared by all customers: pricing depends only on the minutes, the rate and the currency.
    pricing: dict[tuple[int, Decimal, str], _Priced] = {}
    unit_prices: dict[tuple[Decimal, str], Decimal] = {}
    for customer_id in sorted(customers):
        acc = customers[customer_id]
        customer = acc.customer
        key = key_of(customer_id)
        if acc.missing or acc.mismatch:
            holds.extend(_customer_holds(acc, member, key, names))
            continue
        lines = _build_lines(acc, member, names, pricing, unit_prices)
        # Built: free the columns, so that the garbage collector's full passes while the next
        # customers' lines are built do not walk them.
        acc.lines.clear()
        if not lines:
            continue
        zero = decimal_from_scaled(0, minor_units(customer.currency))
        total = sum((line.amount for line in lines), zero)
        drafts.append(
            DraftPlan(
                key=key,
                customer=customer,
                currency=customer.currency,
                lines=lines,
                total=total,
                minutes=sum(line.minutes for line in lines),
                tracked_minutes=acc.tracked,
            )
        )
    return drafts, holds


def _unmapped_holds(
    unmapped: dict[str, _Unmapped], names: _Names, member: Member, key_of: Callable[[str], str]
) -> list[Hold]:
    """One needs_mapping hold per project that resolved to no customer, in project id order.

    Per project, not per client, because mapping the project always resolves its rows; its
    clients are named too, since mapping one of them resolves that client's rows. The key is
    derived from the project id, as a held customer's is from the customer id.
    """
    holds = []
    for project_id in sorted(unmapped):
        project = unmapped[project_id]
        clients = sorted(project.client_ids)
        client_text = (
            "client " + ", ".join(names.client_label(None, c) for c in clients)
            if clients
            else "no tracker client"
        )
        holds.append(
            Hold(
                reason=HOLD_NEEDS_MAPPING,
                subject_key=f"project:{project_id}",
                customer=None,
                message=(
                    f"{member.name} tracked {format_duration(project.tracked)} on project "
                    f"{names.project_label(None, project_id)} ({client_text}), which is not "
                    "mapped to a customer: map the project or its client to a customer."
                ),
                minutes=project.tracked,
                project_ids=(project_id,),
                client_ids=tuple(clients),
                key=key_of(f"unmapped-project:{project_id}"),
                member_id=member.id,
            )
        )
    return holds


# --- consolidation periods --------------------------------------------------------------------
def period_bounds(day: date, period: str, week_start: str = "monday") -> tuple[date, date]:
    """The first and last day of the billing period holding ``day`` (per_period consolidation).

    weekly: seven days from the configured week start; semi_monthly: the 1st-15th and the 16th to
    the month's end; monthly: the calendar month.
    """
    if period == "weekly":
        start = day - timedelta(days=(day.weekday() - WEEKDAYS.index(week_start)) % 7)
        return start, start + timedelta(days=6)
    last = monthrange(day.year, day.month)[1]
    if period == "semi_monthly":
        if day.day <= 15:
            return day.replace(day=1), day.replace(day=15)
        return day.replace(day=16), day.replace(day=last)
    if period == "monthly":
        return day.replace(day=1), day.replace(day=last)
    raise ValueError(f"unknown billing period {period!r}")

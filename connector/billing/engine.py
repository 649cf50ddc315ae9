"""bill(): one timesheet split into one draft (or holds) per customer, in four phases."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import partial

from connector.billing.accumulators import (
    CustomerAccumulator,
    DisplayNames,
    UnmappedProject,
    add_unmapped,
    keep_latest_name,
)
from connector.billing.checks import check_customer, check_row, check_settings
from connector.billing.holds import customer_holds, unmapped_holds
from connector.billing.keys import draft_key, timesheet_revision
from connector.billing.lines import Priced, build_lines
from connector.billing.rates import FoundRate, RateTable, TimelineCache
from connector.billing.records import (
    SOURCE_ROW,
    BillingResult,
    BillingSettings,
    Customer,
    DraftPlan,
    Hold,
    Mappings,
    Member,
    Money,
    TimesheetInput,
)
from connector.money import decimal_from_scaled, minor_units


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
    check_settings(settings)
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
    holds += unmapped_holds(unmapped, names, member, key_of)
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
        check_row(row, timesheet)
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
) -> tuple[dict[str, CustomerAccumulator], dict[str, UnmappedProject], DisplayNames]:
    """Resolve each day row's customer and rate, and add it to one of that customer's lines.

    Resolving per day row, not per line, keeps customers apart and lets a rate change
    mid-period split a line. A day row with no rate, or a rate in another currency, goes to what
    holds its customer instead, and one with no customer to what holds its project; once a
    customer is held, its day rows are no longer added to lines, since any hold holds its whole
    draft. Returns the customers by id, the unmapped projects by id, and the display names.
    """
    customers: dict[str, CustomerAccumulator] = {}
    unmapped: dict[str, UnmappedProject] = {}
    names = DisplayNames()
    project_names, client_names, task_names = names.projects, names.clients, names.tasks
    resolved = CustomerCache(mappings)
    timelines = TimelineCache(rates, member_id)
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
        customer = resolved[project_id, client_id]
        owner = None if customer is None else customer.id
        keep_latest_name(project_names, (owner, project_id), day, project_name)
        if client_id is not None:
            keep_latest_name(client_names, (owner, client_id), day, client_name)
        if task_id is not None:
            keep_latest_name(task_names, (owner, task_id), day, task_name)
        if customer is None:
            add_unmapped(unmapped, project_id, minutes, client_id)
            continue
        acc = customers.get(customer.id)
        if acc is None or acc.customer is not customer:  # `is`: the usual case
            acc = _customer_accumulator(customers, customer, settings)
        acc.tracked += minutes
        if client_id is not None:
            acc.client_ids.add(client_id)

        # At what rate: the row's own, else the rate table's on that day.
        rate: FoundRate | None
        if row_rate is not None:
            rate = FoundRate(row_rate.amount, row_rate.currency, SOURCE_ROW)
        else:
            change_days, found = timelines[project_id, contract_id, customer.id]
            rate = found[bisect_right(change_days, day)]
        if rate is None:
            acc.add_missing_rate(project_id, minutes, day, client_id)
            continue
        amount, currency, source = rate
        if currency != customer.currency:
            acc.add_mismatch(currency, source, project_id, minutes)
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


def _customer_accumulator(
    customers: dict[str, CustomerAccumulator], customer: Customer, settings: BillingSettings
) -> CustomerAccumulator:
    """The accumulator of a customer met for the first time (checked), or of one met before
    under another but equal Customer object (two different ones under one id are refused)."""
    acc = customers.get(customer.id)
    if acc is None:
        check_customer(customer)
        acc = customers[customer.id] = CustomerAccumulator(customer, settings)
    elif acc.customer != customer:
        raise ValueError(f"customer id {customer.id} is mapped to two different customers")
    return acc


class CustomerCache(dict[tuple[str, str | None], Customer | None]):
    """(project id, client id) -> the customer its rows bill to, resolved on first use."""

    __slots__ = ("mappings",)

    def __init__(self, mappings: Mappings) -> None:
        super().__init__()
        self.mappings = mappings

    def __missing__(self, key: tuple[str, str | None]) -> Customer | None:
        # A dict with __missing__: a hit is a plain dict look-up, no Python call per day row.
        customer = self[key] = resolve_customer(self.mappings, *key)
        return customer


def _customer_drafts(
    customers: dict[str, CustomerAccumulator],
    names: DisplayNames,
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
    pricing: dict[tuple[int, Decimal, str], Priced] = {}
    unit_prices: dict[tuple[Decimal, str], Decimal] = {}
    for customer_id in sorted(customers):
        acc = customers[customer_id]
        customer = acc.customer
        key = key_of(customer_id)
        if acc.missing or acc.mismatch:
            holds.extend(customer_holds(acc, member, key, names))
            continue
        lines = build_lines(acc, member, names, pricing, unit_prices)
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

"""The billing engine's inputs read from the database: a workspace's settings, its customer
mappings and its rates (the admin's and the tracker's).

Within :func:`read_once` (one approval's job) what does not change while it runs is read once
and shared by planning and pushing: the normalized timesheet, the books the workspace bills to,
and each customer's settings (one query for all of them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import billing, books, rates, trackers
from connector.models import CustomerMapping, CustomerSettings, Timesheet, TrackerRate, Workspace
from connector.settings import WorkspaceSettings

T = TypeVar("T")
_approval_inputs: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar(
    "approval_inputs", default=None
)


@contextmanager
def read_once() -> Iterator[None]:
    """One approval's job: its unchanging inputs are read once (see the module docstring). A
    settings change committed meanwhile applies from the next job on, never halfway through."""
    token = _approval_inputs.set({})
    try:
        yield
    finally:
        _approval_inputs.reset(token)


def _once(key: tuple[Any, ...], read: Callable[[], T]) -> T:
    memo = _approval_inputs.get()
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    value: T = memo[key]
    return value


def remember_timesheet(ts_row: Timesheet, timesheet: billing.TimesheetInput) -> None:
    """The approval just normalized this content: planning reuses it (keyed by revision)."""
    memo = _approval_inputs.get()
    if memo is not None:
        memo[("timesheet", ts_row.id, ts_row.revision)] = timesheet


def timesheet_of(ts_row: Timesheet) -> billing.TimesheetInput:
    """The timesheet row's stored content as billing reads it (normalized once per approval)."""
    assert ts_row.content is not None
    return _once(
        ("timesheet", ts_row.id, ts_row.revision),
        lambda: trackers.normalize_timesheet(ts_row.source, ts_row.content or {}),
    )


def current_books(s: Session, workspace: Workspace) -> str | None:
    """The key of the books the workspace bills to now (read once per approval)."""
    return _once(
        ("books", workspace.id, workspace.provider),
        lambda: books.current_key(s, workspace.id, workspace.provider),
    )


def _all_customer_settings(
    s: Session, workspace_id: int, books_key: str
) -> dict[str, CustomerSettings]:
    def read() -> dict[str, CustomerSettings]:
        found = {
            cs.customer_id: cs
            for cs in s.scalars(
                select(CustomerSettings).where(
                    CustomerSettings.workspace_id == workspace_id,
                    CustomerSettings.books == books_key,
                )
            )
        }
        if _approval_inputs.get() is not None:
            for cs in found.values():
                s.expunge(cs)  # shared beyond this session: loaded, never refreshed
        return found

    return _once(("customer_settings", workspace_id, books_key), read)


def load_mappings(s: Session, workspace: Workspace) -> billing.Mappings:
    """The mappings of the books the workspace bills to now (see :func:`mappings_in`)."""
    return mappings_in(s, workspace, books.current_key(s, workspace.id, workspace.provider))


def mappings_in(s: Session, workspace: Workspace, books_key: str | None) -> billing.Mappings:
    """The mappings (and each customer's overrides) of ``books_key``, the books the workspace bills
    to now: mappings made in other books name other businesses and are never used (None: an
    accounting system never connected, so nothing is mapped in it yet)."""
    if books_key is None:
        return billing.Mappings(projects={}, clients={})
    settings = WorkspaceSettings.from_dict(workspace.settings)
    overrides = _all_customer_settings(s, workspace.id, books_key)
    projects: dict[str, billing.Customer] = {}
    clients: dict[str, billing.Customer] = {}
    for m in s.scalars(
        select(CustomerMapping).where(
            CustomerMapping.workspace_id == workspace.id, CustomerMapping.books == books_key
        )
    ):
        cs = overrides.get(m.customer_id)
        customer = billing.Customer(
            id=m.customer_id,
            name=m.customer_name,
            currency=(m.customer_currency or settings.default_currency).upper(),
            grouping=cs.grouping if cs else None,
            billing_increment=cs.billing_increment if cs else None,
        )
        (projects if m.kind == "project" else clients)[m.tracker_id] = customer
    return billing.Mappings(projects=projects, clients=clients)


def load_rates(
    s: Session,
    workspace_id: int,
    tracker_rates: Iterable[TrackerRate] | None = None,
    *,
    books_key: str | None,
) -> billing.RateTable:
    """The admin's rates that apply in ``books_key`` (a customer's rate only in the books its
    customer id belongs to) and the tracker's (``tracker_rates``: read but not stored, for a dry
    run; default the stored ones), the admin's winning a tie."""
    if tracker_rates is None:
        tracker_rates = s.scalars(
            select(TrackerRate).where(TrackerRate.workspace_id == workspace_id)
        )
    return rates.rate_table(s.scalars(rates.applicable(workspace_id, books_key)), tracker_rates)


def billing_settings(workspace: Workspace) -> billing.BillingSettings:
    settings = WorkspaceSettings.from_dict(workspace.settings)
    return billing.BillingSettings(
        workspace_id=str(workspace.id),
        grouping=settings.grouping,
        billing_increment=settings.billing_increment,
    )


def run_billing(
    s: Session,
    workspace: Workspace,
    timesheet: billing.TimesheetInput,
    *,
    tracker_rates: Iterable[TrackerRate] | None = None,
) -> billing.BillingResult:
    books_key = books.current_key(s, workspace.id, workspace.provider)
    return billing.bill(
        timesheet,
        billing_settings(workspace),
        mappings_in(s, workspace, books_key),
        load_rates(s, workspace.id, tracker_rates, books_key=books_key),
    )


def customer_settings(
    s: Session, workspace_id: int, books_key: str | None, customer_id: str | None
) -> CustomerSettings | None:
    """One customer's overrides of the workspace's settings (terms, tax, consolidation), if any,
    in the books its id belongs to."""
    if not customer_id or not books_key:
        return None
    if _approval_inputs.get() is not None:
        return _all_customer_settings(s, workspace_id, books_key).get(customer_id)
    return s.scalars(
        select(CustomerSettings).where(
            CustomerSettings.workspace_id == workspace_id,
            CustomerSettings.books == books_key,
            CustomerSettings.customer_id == customer_id,
        )
    ).one_or_none()

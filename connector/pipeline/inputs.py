"""The billing engine's inputs read from the database: a workspace's settings, its customer
mappings and its rates (the admin's and the tracker's)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import billing, books
from connector.models import CustomerMapping, CustomerSettings, Rate, TrackerRate, Workspace
from connector.rates import rate_table
from connector.settings import WorkspaceSettings


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
    overrides = {
        cs.customer_id: cs
        for cs in s.scalars(
            select(CustomerSettings).where(
                CustomerSettings.workspace_id == workspace.id, CustomerSettings.books == books_key
            )
        )
    }
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
    s: Session, workspace_id: int, tracker_rates: Iterable[TrackerRate] | None = None
) -> billing.RateTable:
    """The admin's rates and the tracker's (``tracker_rates``: read but not stored, for a dry
    run; default the stored ones), the admin's winning a tie."""
    if tracker_rates is None:
        tracker_rates = s.scalars(
            select(TrackerRate).where(TrackerRate.workspace_id == workspace_id)
        )
    return rate_table(
        s.scalars(select(Rate).where(Rate.workspace_id == workspace_id)), tracker_rates
    )


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
    return billing.bill(
        timesheet,
        billing_settings(workspace),
        load_mappings(s, workspace),
        load_rates(s, workspace.id, tracker_rates),
    )


def customer_settings(
    s: Session, workspace_id: int, books_key: str | None, customer_id: str | None
) -> CustomerSettings | None:
    """One customer's overrides of the workspace's settings (terms, tax, consolidation), if any,
    in the books its id belongs to."""
    if not customer_id or not books_key:
        return None
    return s.scalars(
        select(CustomerSettings).where(
            CustomerSettings.workspace_id == workspace_id,
            CustomerSettings.books == books_key,
            CustomerSettings.customer_id == customer_id,
        )
    ).one_or_none()

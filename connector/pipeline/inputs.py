"""What billing reads and writes: settings, mappings and rates, tracker entities, Draft lines
as JSON and back as provider requests, and revisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connector import billing, db, observability
from connector.config import current_config
from connector.models import (
    CustomerMapping,
    CustomerSettings,
    Draft,
    DraftStatus,
    PeriodInvoice,
    Rate,
    Timesheet,
    TrackerEntity,
    TrackerRate,
    Workspace,
    utcnow,
)
from connector.money import format_money
from connector.providers.base import (
    CreatedDraft,
    DraftInvoice,
    DraftLine,
    DraftState,
    ProviderStatus,
)
from connector.rates import to_entry
from connector.settings import WorkspaceSettings

# Draft rows the pipeline still has to push to the provider.
TO_PUSH = frozenset({DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})
# Outcomes where the provider said no: nothing was created under the row's key.
KNOWN_NOT_CREATED = frozenset({DraftStatus.FAILED, DraftStatus.CURRENCY_MISMATCH})
# Draft rows that exist (or may exist) at the provider.
AT_PROVIDER = frozenset({DraftStatus.DRAFTED, DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})


def _config() -> Mapping[str, Any]:
    return current_config()


# --- inputs for the billing engine ---------------------------------------------------------------
def load_mappings(s: Session, workspace: Workspace) -> billing.Mappings:
    settings = WorkspaceSettings.from_dict(workspace.settings)
    overrides = {
        cs.customer_id: cs
        for cs in s.scalars(
            select(CustomerSettings).where(CustomerSettings.workspace_id == workspace.id)
        )
    }
    projects: dict[str, billing.Customer] = {}
    clients: dict[str, billing.Customer] = {}
    for m in s.scalars(select(CustomerMapping).where(CustomerMapping.workspace_id == workspace.id)):
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


def load_rates(s: Session, workspace_id: int) -> billing.RateTable:
    admin = [to_entry(r) for r in s.scalars(select(Rate).where(Rate.workspace_id == workspace_id))]
    # Rates read from the tracker (e.g. WebWork contracts) sit beside the admin's own; where
    # both give a rate for the same scope from the same day, the admin's wins.
    taken = {_rate_identity(e) for e in admin}
    tracker = [
        e
        for e in (
            billing.RateEntry(
                amount=r.amount,
                currency=r.currency,
                effective_from=r.effective_from,
                member_id=r.member_id,
                project_id=r.project_id,
                contract_id=r.contract_id,
            )
            for r in s.scalars(select(TrackerRate).where(TrackerRate.workspace_id == workspace_id))
        )
        if _rate_identity(e) not in taken
    ]
    return billing.RateTable(entries=tuple(admin + tracker))


def _rate_identity(entry: billing.RateEntry) -> tuple[Any, ...]:
    return (
        entry.contract_id,
        entry.member_id,
        entry.project_id,
        entry.customer_id,
        entry.effective_from,
    )


def billing_settings(workspace: Workspace) -> billing.BillingSettings:
    settings = WorkspaceSettings.from_dict(workspace.settings)
    return billing.BillingSettings(
        workspace_id=str(workspace.id),
        grouping=settings.grouping,
        billing_increment=settings.billing_increment,
    )


def run_billing(
    s: Session, workspace: Workspace, timesheet: billing.TimesheetInput
) -> billing.BillingResult:
    return billing.bill(
        timesheet,
        billing_settings(workspace),
        load_mappings(s, workspace),
        load_rates(s, workspace.id),
    )


# --- tracker entities seen (for the mapping screen) ----------------------------------------------
def record_tracker_entities(
    s: Session, workspace_id: int, timesheet: billing.TimesheetInput
) -> None:
    seen: dict[tuple[str, str], dict[str, Any]] = {
        ("member", timesheet.member.id): {
            "name": timesheet.member.name,
            "email": timesheet.member.email,
            "client_id": None,
        }
    }
    for row in timesheet.rows:
        seen[("project", row.project_id)] = {
            "name": row.project_name,
            "email": None,
            "client_id": row.client.id if row.client else None,
        }
        if row.client:
            seen[("client", row.client.id)] = {
                "name": row.client.name,
                "email": row.client.email,
                "client_id": None,
            }
    upsert_tracker_entities(s, workspace_id, seen)


def upsert_tracker_entities(
    s: Session, workspace_id: int, seen: Mapping[tuple[str, str], Mapping[str, Any]]
) -> None:
    """Insert or refresh the projects/clients a source saw ((kind, id) -> name, email,
    client_id), so the mapping page lists them; shared by approvals and WebWork's catalog."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    for (kind, tracker_id), values in seen.items():
        stmt = insert(TrackerEntity).values(
            workspace_id=workspace_id, kind=kind, tracker_id=tracker_id, last_seen_at=now, **values
        )
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "kind", "tracker_id"],
                set_={
                    "name": stmt.excluded.name,
                    "email": stmt.excluded.email,
                    "client_id": stmt.excluded.client_id,
                    "last_seen_at": now,
                },
            )
        )


# --- serialising lines into Draft rows and back into provider requests -------------------------
def _line_to_json(line: billing.PlannedLine) -> dict[str, Any]:
    return {
        "description": line.description,
        "minutes": line.minutes,
        "tracked_minutes": line.tracked_minutes,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "amount": str(line.amount),
        "service_date": line.service_date.isoformat() if line.service_date else None,
        "date_from": line.date_from.isoformat(),
        "date_to": line.date_to.isoformat(),
        "project_id": line.project_id,
        "project_name": line.project_name,
        "task_name": line.task_name,
        "rate_source": line.rate_source,
    }


def _draft_line(raw: Mapping[str, Any], currency: str) -> DraftLine:
    quantity = Decimal(raw["quantity"])
    unit_price = Decimal(raw["unit_price"])
    description = raw["description"]
    # Stripe has no quantity column on amount lines: say hours x rate in the words.
    rate_text = f"x {format_money(unit_price, currency)}"
    if rate_text not in description:
        description = f"{description} {rate_text}/h"
    return DraftLine(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        amount=Decimal(raw["amount"]),
        service_date=date.fromisoformat(raw["service_date"]) if raw.get("service_date") else None,
        period_start=date.fromisoformat(raw["date_from"]),
        period_end=date.fromisoformat(raw["date_to"]),
        metadata={"project_id": str(raw.get("project_id", ""))},
    )


def draft_invoice(workspace: Workspace, ts_row: Timesheet, row: Draft) -> DraftInvoice:
    """What the provider is asked to create; deterministic for a given Draft row."""
    settings = WorkspaceSettings.from_dict(workspace.settings)
    with db.new_session() as s:
        cs = s.scalars(
            select(CustomerSettings).where(
                CustomerSettings.workspace_id == workspace.id,
                CustomerSettings.customer_id == row.customer_id,
            )
        ).one_or_none()
    terms = cs.payment_terms_days if cs and cs.payment_terms_days is not None else None
    tax_code = cs.tax_code if cs and cs.tax_code else settings.tax_code
    member = ts_row.member.get("name", "")
    period = f"{ts_row.date_from:%Y-%m-%d} to {ts_row.date_to:%Y-%m-%d}"
    currency = row.currency or settings.default_currency
    memo = f"Hours worked by {member}, {period}. Timesheet {ts_row.timesheet_id}."
    lines = tuple(_draft_line(line, currency) for line in row.lines)
    if row.period_invoice_id is not None:
        # One invoice holds everyone's time: each line names its member (in the description
        # already), its timesheet and period, and the memo lists the timesheets.
        memo = period_memo(row.period_invoice_id, extra=row.id)
        lines = tuple(
            replace(
                line,
                description=f"{line.description} (timesheet {ts_row.timesheet_id})",
                metadata={
                    **line.metadata,
                    "member": member[:200],
                    "timesheet_id": ts_row.timesheet_id,
                    "period": period,
                },
            )
            for line in lines
        )
    note = (
        f"Draft generated by timesheet-invoicer from the approved timesheet "
        f"{ts_row.timesheet_id} ({member}, {period}). Review before sending. "
        f"tsi-key: {row.key}"
    )
    return DraftInvoice(
        key=row.key,
        customer_id=row.customer_id or "",
        customer_name=row.customer_name or "",
        currency=currency,
        lines=lines,
        total=row.total or Decimal(0),
        memo=memo,
        private_note=note,
        period_start=ts_row.date_from or row.created_at.date(),
        period_end=ts_row.date_to or row.created_at.date(),
        # The issue date is fixed when the row is created, so a retry days later sends the
        # very same request (Stripe rejects a reused idempotency key with other parameters).
        issue_date=row.created_at.astimezone(UTC).date(),
        payment_terms_days=terms if terms is not None else settings.payment_terms_days,
        tax_code=tax_code,
        metadata={
            "workspace_id": str(workspace.id),
            "timesheet_id": ts_row.timesheet_id,
            "customer_id": row.customer_id or "",
            "draft_key": row.key,
            "member": member[:200],
            "period": period,
            # per_period: the provider tags each line with its approval (QuickBooks lines have
            # no metadata of their own)
            **({"consolidated": "1"} if row.period_invoice_id is not None else {}),
        },
    )


# --- revisions ---------------------------------------------------------------------------------
def effective_revision(content_revision: str, generation: int) -> str:
    """A re-approval after a withdrawal needs fresh keys: the old drafts were deleted."""
    return content_revision if generation == 0 else f"{content_revision}-g{generation}"


# --- a row's state, and the provider's answer recorded on it -----------------------------------
def is_live(row: Draft) -> bool:
    """Its hours are (or may be) on an invoice at the provider: never re-planned or duplicated."""
    if row.status in (DraftStatus.DRAFTED, DraftStatus.NEEDS_ATTENTION):
        return True
    # Sent at least once with no known outcome: it may exist under its key.
    return row.status in TO_PUSH and row.attempts > 0


def _record_created(row: Draft, created: CreatedDraft) -> None:
    observability.DRAFTS_CREATED.labels(row.provider or "unknown").inc()
    row.provider_id = created.provider_id
    row.link = created.link
    row.status = DraftStatus.DRAFTED
    row.error = row.hold_reason = row.hold_message = None
    _record_provider_status(row, PROVIDER_STATUS_OF_DRAFT_STATE.get(created.state))


# What a create/find tells about the invoice's provider state (the status sync refines it).
PROVIDER_STATUS_OF_DRAFT_STATE = {
    DraftState.DRAFT: ProviderStatus.DRAFT,
    DraftState.SENT: ProviderStatus.SENT,
    DraftState.VOID: ProviderStatus.VOIDED,
    DraftState.DELETED: ProviderStatus.DELETED,
}


def _record_provider_status(row: Draft, status: ProviderStatus | None) -> None:
    if status is not None:
        row.provider_status = status.value
        row.provider_status_at = utcnow()


# --- per_period consolidation: which period a customer's draft joins ---------------------------
def consolidation_of(workspace: Workspace, customer_id: str | None) -> tuple[str, str, str]:
    """(consolidation, period, week_start) for one customer: its overrides, else the workspace's."""
    settings = WorkspaceSettings.from_dict(workspace.settings)
    values = [settings.consolidation, settings.period, settings.week_start]
    if customer_id:
        with db.new_session() as s:
            cs = s.scalars(
                select(CustomerSettings).where(
                    CustomerSettings.workspace_id == workspace.id,
                    CustomerSettings.customer_id == customer_id,
                )
            ).one_or_none()
        if cs is not None:
            for i, override in enumerate((cs.consolidation, cs.period, cs.week_start)):
                values[i] = override or values[i]
    return values[0], values[1], values[2]


def period_memo(
    period_invoice_id: int, *, extra: int | None = None, exclude: int | None = None
) -> str:
    """The memo of a period invoice: its period and every timesheet on it."""
    with db.new_session() as s:
        pinv = s.get(PeriodInvoice, period_invoice_id)
        assert pinv is not None
        names = []
        for row in s.scalars(
            select(Draft).where(Draft.period_invoice_id == period_invoice_id).order_by(Draft.id)
        ):
            if row.id != exclude and (is_live(row) or row.id == extra):
                ts = s.get(Timesheet, row.timesheet_pk)
                if ts is not None:
                    names.append(f"{ts.timesheet_id} ({(ts.member or {}).get('name', '')})")
        period = f"{pinv.period_start:%Y-%m-%d} to {pinv.period_end:%Y-%m-%d}"
    listed = ", ".join(dict.fromkeys(names)) or "none"
    return f"Hours worked {period}. Timesheets: {listed}."

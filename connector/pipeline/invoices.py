"""The invoice record: one provider document and the approvals' contributions (Draft rows) on it.

Per timesheet and per period are one model: a per_timesheet invoice has one contribution, a
per_period one collects every approval of its customer's period. So there is one way to push a
contribution (``pushing``), one way to take it back (``withdrawing``) and one way to record what
the provider said (here).

    consolidation_of          a customer's consolidation, period and week start
    target_of                 which invoice a contribution goes on
    invoice_lock              one writer per shared invoice (per_timesheet ones need none)
    open_invoice              the invoice a contribution joins, opened when there is none
    claim_creation            which contribution creates the invoice at the provider
    record_created            the provider's answer on the invoice and the contribution
    record_provider_status    where it stands at the provider, on the invoice and its approvals
    flag                      a person must look at it (needs attention)
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import billing, observability
from connector.models import (
    Draft,
    DraftStatus,
    Invoice,
    InvoiceMode,
    InvoiceStatus,
    Timesheet,
    Workspace,
    utcnow,
)
from connector.pipeline.draft_status import is_live
from connector.pipeline.inputs import customer_settings
from connector.pipeline.work_locks import work_lock
from connector.providers import capabilities
from connector.providers.base import (
    HANDS_OFF_PROVIDER_STATUSES,
    CreatedDraft,
    DraftState,
    ProviderStatus,
    RetryLater,
)
from connector.settings import WorkspaceSettings

# What a create/find tells about the invoice's provider state (the status sync refines it).
PROVIDER_STATUS_OF_DRAFT_STATE = {
    DraftState.DRAFT: ProviderStatus.DRAFT,
    DraftState.SENT: ProviderStatus.SENT,
    DraftState.VOID: ProviderStatus.VOIDED,
    DraftState.DELETED: ProviderStatus.DELETED,
}
# Invoices a contribution may still be put on.
OPEN_STATUSES = frozenset({InvoiceStatus.PENDING, InvoiceStatus.DRAFTED})


def consolidation_of(
    s: Session, workspace: Workspace, books: str | None, customer_id: str | None
) -> tuple[str, str, str]:
    """(consolidation, period, week_start) for one customer: its overrides, else the workspace's."""
    settings = WorkspaceSettings.from_dict(workspace.settings)
    values = [settings.consolidation, settings.period, settings.week_start]
    overrides = customer_settings(s, workspace.id, books, customer_id)
    if overrides is not None:
        for i, override in enumerate(
            (overrides.consolidation, overrides.period, overrides.week_start)
        ):
            values[i] = override or values[i]
    if values[0] == "per_period" and not capabilities(workspace.provider).per_period:
        # Declared, not found out by a refusal mid-push: a provider that cannot add and remove
        # lines on an open draft bills each approval on its own invoice.
        values[0] = "per_timesheet"
    return values[0], values[1], values[2]


@dataclass(frozen=True)
class Target:
    """The invoice a contribution belongs on: its mode and the days it covers."""

    mode: InvoiceMode
    start: date
    end: date
    books: str
    customer_id: str
    currency: str

    def lock(self, workspace_id: int) -> AbstractContextManager[None]:
        return invoice_lock(workspace_id, self)


def _first_day(row: Draft) -> date:
    return min(date.fromisoformat(line["date_from"]) for line in row.lines)


def target_of(s: Session, workspace: Workspace, ts_row: Timesheet, row: Draft) -> Target:
    """per_period (the customer's consolidation): the period of the contribution's first day;
    otherwise an invoice of its own for the approval's period. A contribution already on an
    invoice stays on it (it may exist at the provider)."""
    assert row.books is not None and row.customer_id is not None and row.currency is not None
    same = {"books": row.books, "customer_id": row.customer_id, "currency": row.currency}
    if row.invoice_id is not None:
        invoice = s.get(Invoice, row.invoice_id)
        assert invoice is not None
        return Target(InvoiceMode(invoice.mode), invoice.period_start, invoice.period_end, **same)
    mode, period, week_start = consolidation_of(s, workspace, row.books, row.customer_id)
    if mode == InvoiceMode.PER_PERIOD and row.lines:
        start, end = billing.period_bounds(_first_day(row), period, week_start)
        return Target(InvoiceMode.PER_PERIOD, start, end, **same)
    today = row.created_at.date()
    return Target(
        InvoiceMode.PER_TIMESHEET, ts_row.date_from or today, ts_row.date_to or today, **same
    )


def invoice_lock(workspace_id: int, target: Target) -> AbstractContextManager[None]:
    """One writer at a time per shared invoice, across processes: two approvals of the same
    period never both open a draft, and never lose each other's lines. A per_timesheet invoice
    has one contribution, already under its timesheet's lock."""
    if target.mode != InvoiceMode.PER_PERIOD:
        return nullcontext()
    which = f"{target.books}|{target.customer_id}|{target.currency}|{target.start.isoformat()}"
    digest = hashlib.sha256(which.encode()).hexdigest()[:32]
    return work_lock(
        f"invoice:{workspace_id}:{digest}",
        wait=5.0,
        busy="another approval is being added to this customer's draft for the period",
    )


def sent_note(provider_status: str | None) -> str:
    state = (provider_status or "sent").replace("_", " ")
    return (
        f"This customer's draft for the period was already {state} by finance, so it was left "
        "alone: these hours are on a new draft for the rest of the period."
    )


def open_invoice(
    s: Session, workspace: Workspace, row: Draft, target: Target
) -> tuple[Invoice, str | None]:
    """The invoice this contribution goes on, and a note when a new one had to be opened
    because finance already sent the period's (the console shows why a second draft exists)."""
    current = row.invoice
    if current is not None and current.status in OPEN_STATUSES:
        return current, None
    row.invoice = None
    found: list[Invoice] = []
    if target.mode == InvoiceMode.PER_PERIOD:
        found = list(
            s.scalars(
                select(Invoice)
                .where(
                    Invoice.workspace_id == workspace.id,
                    Invoice.mode == InvoiceMode.PER_PERIOD,
                    Invoice.books == target.books,
                    Invoice.customer_id == target.customer_id,
                    Invoice.currency == target.currency,
                    Invoice.period_start == target.start,
                )
                .order_by(Invoice.seq)
            )
        )
    note = None
    for invoice in found:
        if invoice.status not in OPEN_STATUSES:
            continue
        if invoice.provider_status in HANDS_OFF_PROVIDER_STATUSES:
            invoice.status = InvoiceStatus.CLOSED
            note = sent_note(invoice.provider_status)
            continue
        row.invoice = invoice
        return invoice, None
    if any(i.status == InvoiceStatus.CLOSED for i in found):
        note = note or sent_note(ProviderStatus.SENT)
    invoice = Invoice(
        workspace_id=workspace.id,
        mode=target.mode,
        books=target.books,
        provider=row.provider or workspace.provider,
        customer_id=target.customer_id,
        customer_name=row.customer_name or "",
        currency=target.currency,
        timesheet_pk=row.timesheet_pk if target.mode == InvoiceMode.PER_TIMESHEET else None,
        period_start=target.start,
        period_end=target.end,
        seq=max((i.seq for i in found), default=0) + 1,
        key=row.key,
        status=InvoiceStatus.PENDING,
        total=Decimal(0),
        minutes=0,
    )
    s.add(invoice)
    row.invoice = invoice
    s.flush()
    return invoice, note


def claim_creation(s: Session, invoice: Invoice, row: Draft) -> bool:
    """True when this contribution creates the invoice at the provider (False: it appends to
    it). A contribution waits while the creating one may still reach the provider; if that one
    never will (refused, held, withdrawn), this one creates the invoice instead."""
    if invoice.key == row.key:
        return True
    if invoice.provider_id is not None:
        return False
    first = s.scalars(select(Draft).where(Draft.key == invoice.key)).one_or_none()
    if first is not None and first.id != row.id and is_live(first):
        raise RetryLater("waiting for the customer's draft for the period to be created")
    invoice.key = row.key
    s.commit()
    return True


def detach(s: Session, row: Draft) -> None:
    """The contribution is not on its invoice after all (refused, or the invoice was sent
    meanwhile). An invoice nobody created and nobody else is on goes with it."""
    invoice = row.invoice
    row.invoice = None
    if invoice is None:
        return
    s.flush()
    if invoice.provider_id is None and not any(
        c.id != row.id for c in s.scalars(select(Draft).where(Draft.invoice_id == invoice.id))
    ):
        s.delete(invoice)
    else:
        refresh_totals(s, invoice)


def contributions_on(s: Session, invoice: Invoice) -> list[Draft]:
    return list(s.scalars(select(Draft).where(Draft.invoice_id == invoice.id)))


def refresh_totals(s: Session, invoice: Invoice, on: list[Draft] | None = None) -> None:
    """The invoice's total and minutes: the sum of the contributions on it (``on``: them, when
    the caller just read them)."""
    on_it = [c for c in (contributions_on(s, invoice) if on is None else on) if is_live(c)]
    invoice.total = sum((c.total or Decimal(0) for c in on_it), Decimal(0))
    invoice.minutes = sum(c.minutes for c in on_it)
    if on_it and not invoice.customer_name:
        invoice.customer_name = on_it[0].customer_name or ""


def record_created(
    s: Session, row: Draft, invoice: Invoice, created: CreatedDraft, note: str | None = None
) -> None:
    """The provider confirmed the contribution's lines (and, for the creating one, the invoice):
    store its id and link; the contribution is drafted."""
    observability.DRAFTS_CREATED.labels(row.provider or "unknown").inc()
    row.provider_id = created.provider_id
    row.link = created.link
    row.status = DraftStatus.DRAFTED
    row.error = row.hold_reason = row.hold_message = None
    if note:
        row.hold_message = note  # the console shows why a second draft exists this period
    row.invoice = invoice
    if invoice.provider_id is None or invoice.key == row.key:
        invoice.provider_id = created.provider_id
        invoice.link = created.link
        invoice.provider = row.provider or invoice.provider
    if invoice.status == InvoiceStatus.PENDING:
        invoice.status = InvoiceStatus.DRAFTED
    s.flush()
    on = contributions_on(s, invoice)  # read once for both
    refresh_totals(s, invoice, on)
    record_provider_status(s, invoice, PROVIDER_STATUS_OF_DRAFT_STATE.get(created.state), on=on)


def record_provider_status(
    s: Session,
    invoice: Invoice,
    status: ProviderStatus | None,
    at: datetime | None = None,
    *,
    on: list[Draft] | None = None,
) -> None:
    """Where the invoice stands at the provider, on it and on each contribution (the
    per-approval views show it). Finance sending it closes it to new approvals; finance (or a
    withdrawal) removing it voids it."""
    if status is None:
        return
    at = at or utcnow()
    invoice.provider_status = status.value
    invoice.provider_status_at = at
    if status in HANDS_OFF_PROVIDER_STATUSES and invoice.status in OPEN_STATUSES:
        invoice.status = InvoiceStatus.CLOSED
    elif status in (ProviderStatus.VOIDED, ProviderStatus.DELETED):
        invoice.status = InvoiceStatus.VOIDED
    elif status == ProviderStatus.DRAFT and invoice.status == InvoiceStatus.CLOSED:
        invoice.status = InvoiceStatus.DRAFTED  # Stripe: finance can't; QuickBooks: unsent
    for row in contributions_on(s, invoice) if on is None else on:
        row.provider_status = status.value
        row.provider_status_at = at


def flag(invoice: Invoice | None, message: str) -> None:
    """A person must look at the invoice: the message says what and why."""
    if invoice is None:
        return
    invoice.needs_attention = True
    invoice.attention_message = message

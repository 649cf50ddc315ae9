"""Withdrawing an approval's drafts: each contribution taken off its invoice, one path for both
consolidations. The invoice's last contribution removes the invoice (deleted or voided); the
others remove only their lines. An invoice finance already sent is never touched: it is flagged
for a person, with what the provider said about it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import books, worker
from connector.models import Draft, DraftStatus, Invoice, Timesheet, TimesheetStatus, Workspace
from connector.pipeline import invoices
from connector.pipeline.draft_status import AT_PROVIDER, is_live
from connector.pipeline.invoice_requests import note_and_memo
from connector.providers import build_provider
from connector.providers.base import (
    HANDS_OFF_PROVIDER_STATUSES,
    AccountingProvider,
    ProviderError,
    ProviderStatus,
    RemovalOutcome,
)
from connector.trackers import TrackerEvent as Event

DONE_WITH = frozenset({DraftStatus.VOIDED, DraftStatus.SUPERSEDED, DraftStatus.NEEDS_ATTENTION})


def withdraw_drafts(
    s: Session,
    workspace: Workspace,
    ts_row: Timesheet,
    config: Mapping[str, Any],
    *,
    reason: str,
) -> None:
    """Take every draft of this timesheet off its invoice where it is still a draft at the
    provider; flag the rest. ``config`` is the app's configuration, for the credentials."""
    rows = list(
        s.scalars(
            select(Draft).where(
                Draft.timesheet_pk == ts_row.id, Draft.status.notin_(list(DONE_WITH))
            )
        )
    )
    providers: dict[str, tuple[AccountingProvider, str | None]] = {}
    for row in rows:
        if row.status not in AT_PROVIDER:
            row.status = DraftStatus.SUPERSEDED  # holds and failures never reached the provider
            row.hold_message = f"Not invoiced: {reason}."
            continue
        name = row.provider or workspace.provider
        if name not in providers:
            providers[name] = (
                build_provider(workspace.id, name, config),
                books.current_key(s, workspace.id, name),
            )
        provider, books_key = providers[name]
        withdraw_contribution(s, workspace, row, provider, books_key, reason)
        worker.heartbeat()


def withdraw_contribution(
    s: Session,
    workspace: Workspace,
    row: Draft,
    provider: AccountingProvider,
    books_key: str | None,
    reason: str,
) -> None:
    """Take one approval's lines off its invoice (the invoice itself when they are its last)."""
    invoice = row.invoice
    if invoice is None:  # planned but never sent: nothing exists under its key
        _void(row, None, f"Not invoiced: {reason}.")
        s.commit()
        return
    target = invoices.Target(
        invoices.InvoiceMode(invoice.mode),
        invoice.period_start,
        invoice.period_end,
        invoice.books,
        invoice.customer_id,
        invoice.currency,
    )
    with target.lock(workspace.id):
        s.refresh(invoice)
        s.refresh(row)
        if invoice.books != books_key:
            _in_other_books(s, workspace, row, invoice, books_key, reason)
        else:
            _take_off(s, row, invoice, provider, reason)
        invoices.refresh_totals(s, invoice)
        s.commit()  # one provider call, one durable record


def _take_off(
    s: Session, row: Draft, invoice: Invoice, provider: AccountingProvider, reason: str
) -> None:
    creator = invoice.key == row.key
    invoice_id = invoice.provider_id if row.attempts > 0 or row.provider_id else None
    if invoice_id is None and row.attempts > 0 and creator:
        found = provider.find_draft(row.key)  # the create's outcome was never known
        invoice_id = found.provider_id if found else None
        if invoice_id is None:
            provider.abandon_draft(row.key)  # e.g. a Stripe invoice whose lines never came
    if invoice_id is None:
        _void(row, None, f"Not invoiced: {reason}.")
        invoices.detach(s, row)
        return
    if invoice.provider_status in HANDS_OFF_PROVIDER_STATUSES:
        # The status sync saw finance send (or be paid for) it: never touch it, flag it.
        _hands_off(row, invoice, reason, invoice.provider_status)
        return
    if invoice.provider_status in (ProviderStatus.VOIDED, ProviderStatus.DELETED):
        # Finance already removed it (neither state can be undone): nothing left to call.
        _void(
            row,
            invoice,
            f"Not invoiced: {reason}; finance had already {invoice.provider_status} the invoice "
            "at the provider.",
        )
        return
    others = [
        c
        for c in s.scalars(select(Draft).where(Draft.invoice_id == invoice.id))
        if c.id != row.id and is_live(c)
    ]
    if others:
        note, memo = note_and_memo(s, invoice, provider, exclude=row.id)
        outcome = provider.remove_lines(invoice_id, row.key, memo=memo, note=note)
        done = f"its lines were taken off the customer's invoice ({reason})"
    else:
        outcome = provider.remove_draft(invoice_id)
        done = f"the invoice held only its lines and was {outcome.value} ({reason})"
    if outcome == RemovalOutcome.NOT_A_DRAFT:
        # The provider says finance sent it meanwhile: record what it is now, and name it.
        _hands_off(row, invoice, reason, _read_status(s, provider, invoice, invoice_id))
        return
    _void(row, invoice if not others else None, f"Not invoiced: {done}.")
    if not others:
        invoices.record_provider_status(
            s,
            invoice,
            ProviderStatus.VOIDED if outcome == RemovalOutcome.VOIDED else ProviderStatus.DELETED,
        )


def _read_status(
    s: Session, provider: AccountingProvider, invoice: Invoice, invoice_id: str
) -> str | None:
    """What the provider says the invoice is now (it refused to change it), recorded."""
    try:
        state = provider.fetch_invoice_states([invoice_id]).get(invoice_id)
    except (ProviderError, NotImplementedError):
        return None  # the flag stands; the status sync will read it later
    if state is None:
        return None
    invoices.record_provider_status(s, invoice, state.status)
    return state.status.value


def _hands_off(row: Draft, invoice: Invoice, reason: str, provider_status: str | None) -> None:
    state = (provider_status or "sent or finalized").replace("_", " ")
    row.status = DraftStatus.NEEDS_ATTENTION
    row.hold_message = (
        f"The approval was withdrawn ({reason}), but the invoice holding its lines is already "
        f"{state} at the provider, so it was left alone. Review it by hand."
    )
    invoices.flag(invoice, row.hold_message)


def _void(row: Draft, invoice: Invoice | None, message: str) -> None:
    row.status = DraftStatus.VOIDED
    row.hold_message = message
    if invoice is not None and invoice.status in invoices.OPEN_STATUSES:
        invoice.status = invoices.InvoiceStatus.VOIDED


def _in_other_books(
    s: Session,
    workspace: Workspace,
    row: Draft,
    invoice: Invoice,
    books_key: str | None,
    reason: str,
) -> None:
    """Its invoice lives in books this workspace no longer reaches: no request names it in the
    books it reaches now; a person removes it there."""
    was = books.describe_key(s, workspace.id, invoice.books)
    if invoice.provider_id is None and row.attempts == 0:
        _void(row, None, f"Not invoiced: {reason}.")
        invoices.detach(s, row)
        return
    row.status = DraftStatus.NEEDS_ATTENTION
    row.hold_message = (
        f"The approval was withdrawn ({reason}), but its invoice is in {was}, which this "
        "workspace no longer bills to, so it was left alone. Remove its lines there by hand."
    )
    invoices.flag(invoice, row.hold_message)


def apply_withdrawal(
    s: Session,
    workspace: Workspace,
    ts_row: Timesheet,
    event: Event,
    config: Mapping[str, Any],
) -> None:
    was_approved = ts_row.status == TimesheetStatus.APPROVED
    ts_row.status = TimesheetStatus.WITHDRAWN
    ts_row.last_event_at = event.timestamp
    s.commit()
    if was_approved or ts_row.revision:
        withdraw_drafts(s, workspace, ts_row, config, reason="approval withdrawn")
        start_new_generation(ts_row)
        ts_row.revision = None


# --- generations: the keys an approval gets after its drafts were withdrawn ---------------------
def effective_revision(content_revision: str, generation: int) -> str:
    """A re-approval after a withdrawal needs fresh keys: the old drafts were deleted."""
    return content_revision if generation == 0 else f"{content_revision}-g{generation}"


def start_new_generation(ts_row: Timesheet) -> int:
    """Its drafts were withdrawn: count a new generation, so the same content approved again
    gets keys never used (the provider still knows the old ones as voided or deleted)."""
    summary = dict(ts_row.summary or {})
    summary["generation"] = int(summary.get("generation", 0)) + 1
    ts_row.summary = summary
    return int(summary["generation"])

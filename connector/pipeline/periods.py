"""per_period consolidation: appending a draft to the open invoice of its customer's period,
and taking it back out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import billing, db, worker
from connector.locks import LockTimeout, advisory_lock
from connector.models import (
    Draft,
    DraftStatus,
    PeriodInvoice,
    PeriodInvoiceStatus,
    Timesheet,
    Workspace,
)
from connector.pipeline.draft_status import (
    TO_PUSH,
    is_live,
    record_created,
    record_provider_status,
)
from connector.pipeline.inputs import customer_settings
from connector.pipeline.invoice_requests import load_draft_invoice, period_memo
from connector.providers.base import (
    HANDS_OFF_PROVIDER_STATUSES,
    AccountingProvider,
    CreatedDraft,
    CurrencyMismatch,
    DraftState,
    NotADraft,
    ProviderStatus,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
    RetryLater,
)
from connector.settings import WorkspaceSettings


def consolidation_of(workspace: Workspace, customer_id: str | None) -> tuple[str, str, str]:
    """(consolidation, period, week_start) for one customer: its overrides, else the workspace's."""
    settings = WorkspaceSettings.from_dict(workspace.settings)
    values = [settings.consolidation, settings.period, settings.week_start]
    with db.new_session() as s:
        overrides = customer_settings(s, workspace.id, customer_id)
    if overrides is not None:
        for i, override in enumerate(
            (overrides.consolidation, overrides.period, overrides.week_start)
        ):
            values[i] = override or values[i]
    return values[0], values[1], values[2]


@contextmanager
def _period_lock(workspace_id: int, customer_id: str, currency: str, start: date) -> Iterator[None]:
    """One writer at a time per customer period invoice, across processes: two approvals of the
    same week never both open a draft, and never lose each other's lines."""
    lease = worker.settings().lease_seconds
    name = f"period:{workspace_id}:{currency}:{start.isoformat()}:{customer_id}"[:200]
    try:
        with advisory_lock(name, ttl=lease, timeout=min(lease, 5.0), keepalive=True):
            yield
    except LockTimeout:
        raise RetryLater(
            "another approval is being added to this customer's draft for the period",
            retry_after=min(lease, 5.0),
        ) from None


def _row_first_day(row: Draft) -> date:
    return min(date.fromisoformat(line["date_from"]) for line in row.lines)


def _open_period_invoice(
    s: Session, workspace: Workspace, row: Draft, bounds: tuple[date, date]
) -> tuple[PeriodInvoice, str | None]:
    """The customer's open invoice for the period, or a new one this row creates.

    A period invoice finance already sent (as the status sync learnt) is closed first: the row
    then opens a new draft for the rest of the period, and says so."""
    assert row.customer_id is not None and row.currency is not None
    found = list(
        s.scalars(
            select(PeriodInvoice)
            .where(
                PeriodInvoice.workspace_id == workspace.id,
                PeriodInvoice.customer_id == row.customer_id,
                PeriodInvoice.currency == row.currency,
                PeriodInvoice.period_start == bounds[0],
            )
            .order_by(PeriodInvoice.seq)
        )
    )
    note = None
    for pinv in found:
        if pinv.status != PeriodInvoiceStatus.OPEN:
            continue
        sent = [
            r
            for r in s.scalars(select(Draft).where(Draft.period_invoice_id == pinv.id))
            if r.provider_status in HANDS_OFF_PROVIDER_STATUSES
        ]
        if sent:
            pinv.status = PeriodInvoiceStatus.CLOSED
            note = _sent_note(sent[0].provider_status)
            continue
        return pinv, None
    if any(p.status == PeriodInvoiceStatus.CLOSED for p in found):
        note = note or _sent_note(ProviderStatus.SENT)
    pinv = PeriodInvoice(
        workspace_id=workspace.id,
        customer_id=row.customer_id,
        currency=row.currency,
        period_start=bounds[0],
        period_end=bounds[1],
        seq=max((p.seq for p in found), default=0) + 1,
        key=row.key,
        provider=row.provider or workspace.provider,
        status=PeriodInvoiceStatus.OPEN,
    )
    s.add(pinv)
    s.flush()
    return pinv, note


def _sent_note(provider_status: str | None) -> str:
    state = (provider_status or "sent").replace("_", " ")
    return (
        f"This customer's draft for the period was already {state} by finance, so it was left "
        "alone: these hours are on a new draft for the rest of the period."
    )


def push_into_period(
    workspace: Workspace,
    timesheet_pk: int,
    draft_id: int,
    provider: AccountingProvider,
    period: str,
    week_start: str,
) -> None:
    """per_period: create the customer's period invoice, or append this row's lines to it."""
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        assert row is not None
        pinv = s.get(PeriodInvoice, row.period_invoice_id) if row.period_invoice_id else None
        if pinv is not None:
            bounds = (pinv.period_start, pinv.period_end)
        else:
            bounds = billing.period_bounds(_row_first_day(row), period, week_start)
        customer_id, currency = row.customer_id or "", row.currency or ""
    with _period_lock(workspace.id, customer_id, currency, bounds[0]):
        # A sent invoice closes and the row opens a new one: at most twice in a row.
        for _ in range(3):
            if _push_period_once(workspace, timesheet_pk, draft_id, provider, bounds):
                return
        raise RetryLater("the period's draft changed while adding lines; trying again")


def _push_period_once(
    workspace: Workspace,
    timesheet_pk: int,
    draft_id: int,
    provider: AccountingProvider,
    bounds: tuple[date, date],
) -> bool:
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        ts_row = s.get(Timesheet, timesheet_pk)
        assert row is not None and ts_row is not None
        if row.status not in TO_PUSH:
            return True
        note = None
        pinv = s.get(PeriodInvoice, row.period_invoice_id) if row.period_invoice_id else None
        if pinv is None or pinv.status != PeriodInvoiceStatus.OPEN:
            pinv, note = _open_period_invoice(s, workspace, row, bounds)
            row.period_invoice_id = pinv.id
            s.commit()  # durable before any call: a retry appends to the same invoice
        creator = pinv.key == row.key
        if not creator and pinv.provider_id is None:
            first = s.scalars(select(Draft).where(Draft.key == pinv.key)).one_or_none()
            if first is not None and is_live(first):
                raise RetryLater("waiting for the customer's draft for the period to be created")
            # Its creator never reached the provider (refused, held, withdrawn): this row
            # creates the period's invoice instead.
            pinv.key = row.key
            s.commit()
            creator = True
        try:
            if creator:
                if row.attempts > 0 and not row.provider_id:
                    found = provider.find_draft(row.key)
                    if found is not None:
                        _record_period_created(row, pinv, found, note)
                        s.commit()
                        return True
                invoice = load_draft_invoice(workspace, ts_row, row)
                row.attempts += 1
                row.status = DraftStatus.PENDING
                s.commit()  # durable before the call: a crash now means "look it up first"
                created = provider.create_draft(invoice)
            else:
                assert pinv.provider_id is not None
                invoice = load_draft_invoice(workspace, ts_row, row)
                row.attempts += 1
                row.status = DraftStatus.PENDING
                s.commit()  # a crash now: the retry appends again, the provider skips its lines
                created = provider.append_lines(pinv.provider_id, invoice)
        except NotADraft:
            # Finance sent (or removed) the period's invoice meanwhile: nothing was added.
            pinv.status = PeriodInvoiceStatus.CLOSED
            row.period_invoice_id = None
            s.commit()
            return False
        except CurrencyMismatch as exc:
            row.status = DraftStatus.CURRENCY_MISMATCH
            row.hold_reason = DraftStatus.CURRENCY_MISMATCH
            row.hold_message = exc.message
            s.commit()
            return True
        except Rejected as exc:
            row.status = DraftStatus.FAILED
            row.error = str(exc)
            s.commit()
            return True
        except ReconnectNeeded as exc:
            row.status = DraftStatus.RECONNECT_NEEDED
            row.error = str(exc)
            s.commit()
            raise
        except RetryLater as exc:
            row.error = str(exc)
            s.commit()
            raise
        if created.state == DraftState.SENT and not creator:
            # Reported as sent after all: never count these lines as on it.
            pinv.status = PeriodInvoiceStatus.CLOSED
            row.period_invoice_id = None
            s.commit()
            return False
        _record_period_created(row, pinv, created, note)
        s.commit()
        return True


def _record_period_created(
    row: Draft, pinv: PeriodInvoice, created: CreatedDraft, note: str | None
) -> None:
    record_created(row, created)
    if pinv.key == row.key:
        pinv.provider_id = created.provider_id
        pinv.provider = row.provider
    if note:
        row.hold_message = note  # the console shows why a second draft exists this period


def withdraw_from_period(
    s: Session, workspace: Workspace, row: Draft, provider: AccountingProvider, reason: str
) -> None:
    """Remove only this row's lines from its period invoice; its last lines delete the draft."""
    pinv = s.get(PeriodInvoice, row.period_invoice_id)
    assert pinv is not None
    with _period_lock(workspace.id, pinv.customer_id, pinv.currency, pinv.period_start):
        s.refresh(pinv)
        s.refresh(row)
        invoice_id = row.provider_id or (pinv.provider_id if row.attempts > 0 else None)
        if invoice_id is None and row.attempts > 0 and pinv.key == row.key:
            found = provider.find_draft(row.key)
            invoice_id = found.provider_id if found else None
            if invoice_id is None:
                provider.abandon_draft(row.key)
        if invoice_id is None:
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Not invoiced: {reason}."
            s.commit()
            return
        if row.provider_status in HANDS_OFF_PROVIDER_STATUSES:
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but the period's invoice holding its "
                f"lines is already {row.provider_status.replace('_', ' ')} at the provider, so "
                "it was left alone. Review it by hand."
            )
            pinv.status = PeriodInvoiceStatus.CLOSED
            s.commit()
            return
        others = [
            r
            for r in s.scalars(select(Draft).where(Draft.period_invoice_id == pinv.id))
            if r.id != row.id and is_live(r)
        ]
        if others:
            outcome = provider.remove_lines(
                invoice_id, row.key, memo=period_memo(pinv.id, exclude=row.id)
            )
            done = f"its lines were removed from the period's draft ({reason})"
        else:
            outcome = provider.remove_draft(invoice_id)
            done = f"the period's draft held only its lines and was {outcome.value} ({reason})"
        if outcome == RemovalOutcome.NOT_A_DRAFT:
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but finance already sent or finalized "
                "the period's invoice holding its lines, so it was left alone. Review it by hand."
            )
            pinv.status = PeriodInvoiceStatus.CLOSED
        else:
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Not invoiced: {done}."
            if not others:
                pinv.status = PeriodInvoiceStatus.DELETED
                record_provider_status(
                    row,
                    ProviderStatus.VOIDED
                    if outcome == RemovalOutcome.VOIDED
                    else ProviderStatus.DELETED,
                )
        s.commit()
        worker.heartbeat()

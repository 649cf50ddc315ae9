"""Pushing planned Draft rows to the provider, one at a time, each onto its invoice.

One path for both consolidations: a contribution finds (or opens) its invoice; the one whose key
the invoice carries creates it at the provider, every other one appends its lines to it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import books, db, worker
from connector.models import Draft, DraftStatus, Invoice, Timesheet, Workspace
from connector.pipeline import invoices
from connector.pipeline.draft_status import TO_PUSH
from connector.pipeline.invoice_requests import load_draft_invoice
from connector.providers.base import (
    AccountingProvider,
    CreatedDraft,
    CurrencyMismatch,
    DraftState,
    NotADraft,
    ReconnectNeeded,
    Rejected,
    RetryLater,
)


def push_drafts(
    workspace: Workspace, timesheet_pk: int, provider: AccountingProvider, books_key: str | None
) -> None:
    """Create every pending draft of the live revision at the provider (``books_key``: the books
    it reaches), one at a time."""
    # The timesheet row is read once: under the job's timesheet lock nothing else changes it.
    with db.autocommit_session() as s:
        ts_row = s.get(Timesheet, timesheet_pk)
        assert ts_row is not None
        ids = list(
            s.scalars(
                select(Draft.id)
                .where(
                    Draft.timesheet_pk == timesheet_pk,
                    Draft.revision == ts_row.revision,
                    Draft.status.in_(list(TO_PUSH)),
                )
                .order_by(Draft.id)
            )
        )
    # One draft's transient failure (a 5xx, a timeout) must not keep the other customers of the
    # approval waiting: push them all, then raise the first failure so the job retries it.
    # A lost connection is different: every other call would fail the same way.
    first_failure: RetryLater | None = None
    for draft_id in ids:
        try:
            push_draft(workspace, ts_row, draft_id, provider, books_key)
        except ReconnectNeeded:
            raise
        except RetryLater as exc:
            first_failure = first_failure or exc
        worker.heartbeat()  # a timesheet with many customers may outlast one lease
    if first_failure is not None:
        raise first_failure


def push_draft(
    workspace: Workspace,
    ts_row: Timesheet,
    draft_id: int,
    provider: AccountingProvider,
    books_key: str | None,
) -> None:
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        assert row is not None
        if row.books != books_key or books_key is None:
            _planned_for_other_books(s, workspace, row, books_key)
            return
        target = invoices.target_of(s, workspace, ts_row, row)
    with target.lock(workspace.id):
        # A sent invoice closes and the row opens a new one: at most twice in a row.
        for _ in range(3):
            if _push_once(workspace, ts_row, draft_id, provider, target):
                return
        raise RetryLater("the period's draft changed while adding lines; trying again")


def _planned_for_other_books(
    s: Session, workspace: Workspace, row: Draft, books_key: str | None
) -> None:
    """The row's customer belongs to books the workspace no longer bills to: never sent here.
    A row never sent waits for a mapping in the new books; one that may exist in the old books
    (an unknown outcome) is left for a person."""
    was = books.describe_key(s, workspace.id, row.books) if row.books else "other books"
    now = books.describe_key(s, workspace.id, books_key) if books_key else "no connected books"
    if row.attempts == 0:
        row.status = DraftStatus.NEEDS_MAPPING
        row.hold_reason = DraftStatus.NEEDS_MAPPING
        row.hold_message = (
            f"{row.customer_name or 'This customer'} was mapped to a customer in {was}; this "
            f"workspace now bills to {now}. Map the client to a customer there."
        )
    else:
        row.status = DraftStatus.NEEDS_ATTENTION
        row.hold_message = (
            f"This draft was being created in {was} when the workspace moved to {now}: it may "
            f"exist in {was}. Look there; re-bill the approval to bill it in {now}."
        )
        invoices.flag(row.invoice, row.hold_message)
    s.commit()


def _push_once(
    workspace: Workspace,
    ts_row: Timesheet,
    draft_id: int,
    provider: AccountingProvider,
    target: invoices.Target,
) -> bool:
    """One try at putting the row on its invoice; False when the invoice was sent meanwhile and
    the row must go on a new one. ``ts_row``: read once by :func:`push_drafts` (detached)."""
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        assert row is not None
        if row.status not in TO_PUSH:
            return True
        invoice, note = invoices.open_invoice(s, workspace, row, target)
        s.commit()  # durable before any call: a retry goes to the same invoice
        creator = invoices.claim_creation(s, invoice, row)
        attempts = row.attempts
        try:
            created = _send(s, provider, workspace, ts_row, row, invoice, creator)
        except NotADraft:
            return _invoice_left(s, row, invoice)  # finance sent or removed it meanwhile
        except (Rejected, ReconnectNeeded, RetryLater) as exc:
            _record_failure(s, row, exc, counted=row.attempts > attempts)
            return True
        if created.state == DraftState.SENT and not creator:
            return _invoice_left(s, row, invoice)  # reported as sent: its lines do not count
        invoices.record_created(s, row, invoice, created, note)
        s.commit()
        return True


def _send(
    s: Session,
    provider: AccountingProvider,
    workspace: Workspace,
    ts_row: Timesheet,
    row: Draft,
    invoice: Invoice,
    creator: bool,
) -> CreatedDraft:
    if creator and row.attempts > 0 and not row.provider_id:
        # A previous attempt may have reached the provider: look before creating.
        found = provider.find_draft(row.key)
        if found is not None:
            return found
    request = load_draft_invoice(workspace, ts_row, row, invoice, provider)
    row.attempts += 1
    row.status = DraftStatus.PENDING
    s.commit()  # durable before the call: a crash now means "look it up (or append) again"
    if creator:
        return provider.create_draft(request)
    assert invoice.provider_id is not None
    # A crash now: the retry appends again, the provider skips lines already under the key.
    return provider.append_lines(invoice.provider_id, request)


def _invoice_left(s: Session, row: Draft, invoice: Invoice) -> bool:
    invoice.status = invoices.InvoiceStatus.CLOSED
    invoices.detach(s, row)
    s.commit()
    return False


def _record_failure(s: Session, row: Draft, exc: Exception, *, counted: bool) -> None:
    """The provider's refusal or a transient failure, on the row; re-raised when the job must
    wait or retry."""
    if isinstance(exc, CurrencyMismatch):
        row.status = DraftStatus.CURRENCY_MISMATCH
        row.hold_reason = DraftStatus.CURRENCY_MISMATCH
        row.hold_message = exc.message
        invoices.detach(s, row)  # nothing was created or added under its key
    elif isinstance(exc, Rejected):
        row.status = DraftStatus.FAILED
        row.error = str(exc)
        invoices.detach(s, row)
    elif isinstance(exc, ReconnectNeeded):
        row.status = DraftStatus.RECONNECT_NEEDED
        row.error = str(exc)
    else:
        assert isinstance(exc, RetryLater)
        if counted and exc.created_nothing:
            # Nothing exists under the key (e.g. the limiter refused before sending): the next
            # try goes straight to the create instead of spending a request on a look-up.
            row.attempts -= 1
        row.error = str(exc)
    s.commit()
    if isinstance(exc, ReconnectNeeded | RetryLater):
        raise exc

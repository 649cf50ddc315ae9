"""Pushing planned Draft rows to the provider, one at a time (per_period rows via periods.py)."""

from __future__ import annotations

from sqlalchemy import select

from connector import db, worker
from connector.models import (
    Draft,
    DraftStatus,
    Timesheet,
    Workspace,
)
from connector.pipeline.draft_status import TO_PUSH, record_created
from connector.pipeline.invoice_requests import load_draft_invoice
from connector.pipeline.periods import consolidation_of, push_into_period
from connector.providers.base import (
    AccountingProvider,
    CurrencyMismatch,
    ReconnectNeeded,
    Rejected,
    RetryLater,
)


def push_drafts(workspace: Workspace, timesheet_pk: int, provider: AccountingProvider) -> None:
    """Create every pending draft of the live revision at the provider, one at a time."""
    with db.new_session() as s:
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
            push_draft(workspace, timesheet_pk, draft_id, provider)
        except ReconnectNeeded:
            raise
        except RetryLater as exc:
            first_failure = first_failure or exc
        worker.heartbeat()  # a timesheet with many customers may outlast one lease
    if first_failure is not None:
        raise first_failure


def push_draft(
    workspace: Workspace, timesheet_pk: int, draft_id: int, provider: AccountingProvider
) -> None:
    with db.new_session() as s:
        pending = s.get(Draft, draft_id)
        assert pending is not None
        mode, period, week_start = consolidation_of(workspace, pending.customer_id)
        # A row already sent on its own (attempts > 0) stays on its own invoice: it may exist.
        consolidated = pending.period_invoice_id is not None or (
            mode == "per_period" and pending.attempts == 0 and bool(pending.lines)
        )
    if consolidated:
        push_into_period(workspace, timesheet_pk, draft_id, provider, period, week_start)
        return
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        ts_row = s.get(Timesheet, timesheet_pk)
        assert row is not None and ts_row is not None
        counted = False  # this call counted an attempt (committed before the provider call)
        try:
            if row.attempts > 0 and not row.provider_id:
                # A previous attempt may have reached the provider: look before creating.
                found = provider.find_draft(row.key)
                if found is not None:
                    record_created(row, found)
                    s.commit()
                    return
            invoice = load_draft_invoice(workspace, ts_row, row)
            row.attempts += 1
            row.status = DraftStatus.PENDING
            s.commit()  # durable before the call: a crash now means "look it up first"
            counted = True
            created = provider.create_draft(invoice)
        except CurrencyMismatch as exc:
            row.status = DraftStatus.CURRENCY_MISMATCH
            row.hold_reason = DraftStatus.CURRENCY_MISMATCH
            row.hold_message = exc.message
            s.commit()
            return
        except Rejected as exc:
            row.status = DraftStatus.FAILED
            row.error = str(exc)
            s.commit()
            return
        except ReconnectNeeded as exc:
            row.status = DraftStatus.RECONNECT_NEEDED
            row.error = str(exc)
            s.commit()
            raise
        except RetryLater as exc:
            if counted and exc.created_nothing:
                # Nothing exists under the key (e.g. the limiter refused before sending): the
                # next try goes straight to the create instead of spending a request on a look-up.
                row.attempts -= 1
            row.error = str(exc)
            s.commit()
            raise
        record_created(row, created)
        s.commit()

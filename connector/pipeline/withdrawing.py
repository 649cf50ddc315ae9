"""Withdrawing an approval's drafts: voiding or abandoning what the provider holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import worker
from connector.models import (
    Draft,
    DraftStatus,
    Timesheet,
    TimesheetStatus,
    Workspace,
)
from connector.pipeline.draft_status import AT_PROVIDER, record_provider_status
from connector.pipeline.periods import withdraw_from_period
from connector.providers import build_provider
from connector.providers.base import (
    HANDS_OFF_PROVIDER_STATUSES,
    AccountingProvider,
    ProviderStatus,
    RemovalOutcome,
)
from connector.trackers import TrackerEvent as Event


def withdraw_drafts(
    s: Session,
    workspace: Workspace,
    ts_row: Timesheet,
    config: Mapping[str, Any],
    *,
    reason: str,
) -> None:
    """Delete/void every draft of this timesheet still a draft at the provider; flag the rest.

    ``config`` is the app's configuration, for the provider's credentials."""
    rows = list(
        s.scalars(
            select(Draft).where(
                Draft.timesheet_pk == ts_row.id,
                Draft.status.notin_(
                    [DraftStatus.VOIDED, DraftStatus.SUPERSEDED, DraftStatus.NEEDS_ATTENTION]
                ),
            )
        )
    )
    provider: AccountingProvider | None = None
    for row in rows:
        if row.status not in AT_PROVIDER:
            row.status = DraftStatus.SUPERSEDED  # holds and failures never reached the provider
            row.hold_message = f"Not invoiced: {reason}."
            continue
        provider = provider or build_provider(
            workspace.id, row.provider or workspace.provider, config
        )
        if row.period_invoice_id is not None:
            withdraw_from_period(s, workspace, row, provider, reason)
            continue
        provider_id = row.provider_id
        if provider_id is None and row.attempts > 0:
            found = provider.find_draft(row.key)
            provider_id = found.provider_id if found else None
        if provider_id is None:
            if row.attempts > 0:
                provider.abandon_draft(row.key)  # e.g. a Stripe invoice whose lines never came
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Not invoiced: {reason}."
            s.commit()
            continue
        if row.provider_status in HANDS_OFF_PROVIDER_STATUSES:
            # The status sync saw finance send (or be paid for) it: never touch it, flag it.
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but this invoice is already "
                f"{row.provider_status.replace('_', ' ')} at the provider, so it was left "
                "alone. Review it by hand."
            )
            s.commit()
            continue
        if row.provider_status in (ProviderStatus.VOIDED, ProviderStatus.DELETED):
            # Finance already removed it (neither state can be undone): nothing left to call.
            row.status = DraftStatus.VOIDED
            row.hold_message = (
                f"Not invoiced: {reason}; finance had already {row.provider_status} it at the "
                "provider."
            )
            s.commit()
            continue
        outcome = provider.remove_draft(provider_id)
        if outcome == RemovalOutcome.NOT_A_DRAFT:
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but finance already sent or finalized "
                "this invoice, so it was left alone. Review it by hand."
            )
        else:
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Draft {outcome.value} at the provider: {reason}."
            record_provider_status(
                row,
                ProviderStatus.VOIDED
                if outcome == RemovalOutcome.VOIDED
                else ProviderStatus.DELETED,
            )
        s.commit()  # one provider call, one durable record
        worker.heartbeat()


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

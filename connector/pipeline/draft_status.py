"""A Draft row's status: which rows are live at the provider, which still have to be pushed, and
the provider's answer recorded on a row."""

from __future__ import annotations

from connector import observability
from connector.models import Draft, DraftStatus, utcnow
from connector.providers.base import CreatedDraft, DraftState, ProviderStatus

# Draft rows the pipeline still has to push to the provider.
TO_PUSH = frozenset({DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})
# Outcomes where the provider said no: nothing was created under the row's key.
KNOWN_NOT_CREATED = frozenset({DraftStatus.FAILED, DraftStatus.CURRENCY_MISMATCH})
# Draft rows that exist (or may exist) at the provider.
AT_PROVIDER = frozenset({DraftStatus.DRAFTED, DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})

# What a create/find tells about the invoice's provider state (the status sync refines it).
PROVIDER_STATUS_OF_DRAFT_STATE = {
    DraftState.DRAFT: ProviderStatus.DRAFT,
    DraftState.SENT: ProviderStatus.SENT,
    DraftState.VOID: ProviderStatus.VOIDED,
    DraftState.DELETED: ProviderStatus.DELETED,
}


def is_live(row: Draft) -> bool:
    """Its hours are (or may be) on an invoice at the provider: never re-planned or duplicated."""
    if row.status in (DraftStatus.DRAFTED, DraftStatus.NEEDS_ATTENTION):
        return True
    # Sent at least once with no known outcome: it may exist under its key.
    return row.status in TO_PUSH and row.attempts > 0


def record_created(row: Draft, created: CreatedDraft) -> None:
    """The provider confirmed the draft: store its id and link; the row is drafted."""
    observability.DRAFTS_CREATED.labels(row.provider or "unknown").inc()
    row.provider_id = created.provider_id
    row.link = created.link
    row.status = DraftStatus.DRAFTED
    row.error = row.hold_reason = row.hold_message = None
    record_provider_status(row, PROVIDER_STATUS_OF_DRAFT_STATE.get(created.state))


def record_provider_status(row: Draft, status: ProviderStatus | None) -> None:
    if status is not None:
        row.provider_status = status.value
        row.provider_status_at = utcnow()

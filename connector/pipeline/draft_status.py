"""A Draft row's status: which rows are live at the provider and which still have to be pushed.
(What the provider answered is recorded by ``invoices``.)"""

from __future__ import annotations

from connector.models import Draft, DraftStatus

# Draft rows the pipeline still has to push to the provider.
TO_PUSH = frozenset({DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})
# Outcomes where the provider said no: nothing was created under the row's key.
KNOWN_NOT_CREATED = frozenset({DraftStatus.FAILED, DraftStatus.CURRENCY_MISMATCH})
# Draft rows that exist (or may exist) at the provider.
AT_PROVIDER = frozenset({DraftStatus.DRAFTED, DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})


def is_live(row: Draft) -> bool:
    """Its hours are (or may be) on an invoice at the provider: never re-planned or duplicated."""
    if row.status in (DraftStatus.DRAFTED, DraftStatus.NEEDS_ATTENTION):
        return True
    # Sent at least once with no known outcome: it may exist under its key.
    return row.status in TO_PUSH and row.attempts > 0

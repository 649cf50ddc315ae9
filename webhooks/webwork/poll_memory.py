"""What a poll remembers of each WebWork timesheet and stores for a change: the shared poll
memory (``webhooks/poll_memory.py``) for the WebWork source."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from connector.models import TrackerTimesheetSeen
from webhooks import poll_memory as shared
from webhooks.poll_memory import MAX_ID_LENGTH, Change, Seen, delivery_id
from webhooks.webwork import SOURCE

__all__ = [
    "MAX_ID_LENGTH",
    "Change",
    "Seen",
    "delivery_id",
    "record",
    "seen_count",
    "seen_row",
    "what_was_seen",
]


def seen_row(s: Session, workspace_id: int, timesheet_id: str) -> TrackerTimesheetSeen | None:
    return shared.seen_row(s, SOURCE, workspace_id, timesheet_id)


def what_was_seen(workspace_id: int, timesheet_id: str) -> Seen:
    return shared.what_was_seen(SOURCE, workspace_id, timesheet_id)


def record(
    workspace_id: int,
    timesheet_id: str,
    *,
    status: str,
    digest: str | None,
    now: datetime,
    change: Change | None = None,
    auto_invoicing: bool = True,
) -> tuple[int | None, int | None]:
    """Update what was seen and, for a change, store its delivery + job (one transaction)."""
    return shared.record(
        SOURCE,
        workspace_id,
        timesheet_id,
        status=status,
        digest=digest,
        now=now,
        change=change,
        auto_invoicing=auto_invoicing,
    )


def seen_count(workspace_id: int) -> int:
    return shared.seen_count(SOURCE, workspace_id)

"""What the reconciling poll remembers of each approval request: the shared poll memory
(``webhooks/poll_memory.py``) bound to Clockify, and the hash of an approval's content."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from webhooks import poll_memory
from webhooks.clockify import SOURCE
from webhooks.poll_memory import Change, Seen

__all__ = [
    "APPROVED",
    "Change",
    "Seen",
    "record",
    "remember_approved",
    "rows_hash",
    "what_was_seen",
]

APPROVED = "approved"


def rows_hash(timesheet: dict[str, Any]) -> str:
    """What changes when an approval's content changes (member, period, rows)."""
    content = {k: timesheet.get(k) for k in ("member", "date_from", "date_to", "rows")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def what_was_seen(workspace_id: int, request_id: str) -> Seen:
    return poll_memory.what_was_seen(SOURCE, workspace_id, request_id)


def record(workspace_id: int, request_id: str, **kwargs: Any) -> tuple[int | None, int | None]:
    """Update what was seen and, for a change, store its delivery + job (one transaction)."""
    return poll_memory.record(SOURCE, workspace_id, request_id, **kwargs)


def remember_approved(workspace_id: int, timesheet: dict[str, Any], *, now: datetime) -> None:
    """A webhook's approval, read from Clockify: the next poll does not deliver it again."""
    record(workspace_id, timesheet["id"], status=APPROVED, digest=rows_hash(timesheet), now=now)

"""The registry through which the core reaches tracker sources (``webhooks/<source>/``).

The core (pipeline, console) never imports a tracker's package: a source registers what it can
do here when the app is built (``webhooks.<source>.setup``), and the core asks through these
functions. Today one source registers: WebWork (a connected account that is polled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import Connection, ConnectionStatus

# source -> fn(workspace_id, event) -> the event with rows read from the tracker, or None
_FILLERS: dict[str, Callable[[int, Any], Any]] = {}
# source -> fn(workspace_id) -> extra words for a "needs rate" hold, or None
_RATE_HINTS: dict[str, Callable[[int], str | None]] = {}
# connection provider name -> display name, for tracker accounts (not accounting ones)
TRACKER_PROVIDERS: dict[str, str] = {}


def register_source(
    source: str,
    *,
    display_name: str,
    fill_event: Callable[[int, Any], Any] | None = None,
    rate_hold_hint: Callable[[int], str | None] | None = None,
) -> None:
    TRACKER_PROVIDERS[source] = display_name
    if fill_event is not None:
        _FILLERS[source] = fill_event
    if rate_hold_hint is not None:
        _RATE_HINTS[source] = rate_hold_hint


def fill_event(workspace_id: int, source: str, event: Any) -> Any:
    """The approval with its rows read from the tracker's API, or None (no connected account:
    the event is used as sent, and a thin one waits)."""
    filler = _FILLERS.get(source)
    return None if filler is None else filler(workspace_id, event)


def rate_hold_hint(workspace_id: int, source: str) -> str | None:
    hint = _RATE_HINTS.get(source)
    return None if hint is None else hint(workspace_id)


@dataclass(frozen=True)
class TrackerStatus:
    """Is the workspace's tracker account connected, and when did it last poll (first-run
    checklist, connections page)."""

    source: str | None
    connected: bool
    status: str  # connected | reconnect_needed | disconnected | not_connected
    connected_as: str | None = None
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    next_poll_at: datetime | None = None
    last_error: str | None = None


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def tracker_status(workspace_id: int) -> TrackerStatus:
    with db.new_session() as s:
        rows = list(
            s.scalars(
                select(Connection).where(
                    Connection.workspace_id == workspace_id,
                    Connection.provider.in_(list(TRACKER_PROVIDERS) or [""]),
                )
            )
        )
    row = next((r for r in rows if r.status != ConnectionStatus.DISCONNECTED), None)
    if row is None:
        return TrackerStatus(source=None, connected=False, status="not_connected")
    meta = dict(row.meta or {})
    return TrackerStatus(
        source=row.provider,
        connected=row.status == ConnectionStatus.CONNECTED,
        status=row.status,
        connected_as=row.account_name,
        last_poll_at=_when(meta.get("last_poll_at")),
        last_success_at=_when(meta.get("last_success_at")),
        next_poll_at=_when(meta.get("next_poll_at")),
        last_error=row.last_error or meta.get("last_error"),
    )

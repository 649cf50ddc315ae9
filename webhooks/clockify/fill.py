"""An approval made ready to bill (``trackers.fill_event``): its rows read from Clockify.

Clockify's webhook carries the approval request, not its time: the request is looked up among
the workspace's APPROVED requests (most recently updated first: a fresh approval is on the first
page), and its entries are read as that list gives them (or, when an older Clockify does not
list them, the member's entries of the period). A delivery the reconciling poll stored carries
the rows the poll read and is used as it is: both paths build rows with ``build_timesheet``
from the same data, so a webhook and a poll of one approval have one content revision.

Faults: throttled, 5xx or timeouts -> RetryLater (after Retry-After); a revoked key or a user
no longer Owner/Admin -> the connection is held ("Reconnect Clockify") and the job WAITS for
the reconnect (nothing is lost: reconnecting wakes it); a request Clockify no longer shows as
approved -> the approval waits for the next poll, which withdraws or bills it.
"""

from __future__ import annotations

from typing import Any

from connector import worker
from connector.models import utcnow
from connector.providers.base import Rejected, RetryLater
from webhooks.clockify.client import (
    ClockifyClient,
    Forbidden,
    ReconnectRequired,
    TrackerError,
    Unavailable,
)
from webhooks.clockify.connection import client_for
from webhooks.clockify.events import Event
from webhooks.clockify.health import hold, reconnect_words
from webhooks.clockify.memory import remember_approved
from webhooks.clockify.store import WAIT_RECONNECT, WAIT_TRACKER_DATA
from webhooks.clockify.timesheets import EntryError, build_timesheet, parse_instant

FIND_PAGES = 5  # approved requests looked through for a webhook's request (most recent first)


def find_approved(client: ClockifyClient, request_id: str) -> dict[str, Any] | None:
    """The approved request's list item (``approvalRequest`` and ``entries``), or None."""
    for number, page in enumerate(client.approval_request_pages("APPROVED"), start=1):
        for item in page:
            request = item.get("approvalRequest") or {}
            if str(request.get("id")) == request_id:
                return item
        if number >= FIND_PAGES:
            break
    return None


def item_entries(client: ClockifyClient, item: dict[str, Any]) -> list[Any]:
    """The request's entries as listed, else the member's entries of the period."""
    entries = item.get("entries")
    if isinstance(entries, list):
        return entries
    request = item["approvalRequest"]
    date_range = request.get("dateRange") or {}
    return client.user_time_entries(
        str((request.get("owner") or {}).get("userId")),
        parse_instant(date_range.get("start"), "dateRange/start"),
        parse_instant(date_range.get("end"), "dateRange/end"),
    )


def refused(workspace_id: int, exc: TrackerError) -> worker.WaitFor:
    """A confirmed refusal of the key: hold the connection, and wait for the reconnect."""
    if isinstance(exc, ReconnectRequired | Forbidden):
        hold(workspace_id, exc.message)
    return worker.WaitFor(WAIT_RECONNECT, reconnect_words(exc.message))


def fill_event(workspace_id: int, event: Event, *, polled: bool = False) -> Event | None:
    """The approval with its rows (None: a polled delivery, used as it is)."""
    if polled or not event.is_approval:
        return None
    try:
        client = client_for(workspace_id)
        item = find_approved(client, event.timesheet_id)
        entries = item_entries(client, item) if item is not None else []
    except (ReconnectRequired, Forbidden) as exc:
        raise refused(workspace_id, exc) from None
    except Unavailable as exc:
        raise RetryLater(exc.message, retry_after=exc.retry_after) from None
    except TrackerError as exc:
        raise RetryLater(f"Clockify could not be read: {exc.message}") from None
    except EntryError as exc:
        raise Rejected(f"Clockify sent an unreadable approval request: {exc}") from None
    if item is None:
        raise worker.WaitFor(
            WAIT_TRACKER_DATA,
            f"Clockify does not show approval request {event.timesheet_id[:80]} as approved "
            "any more; the next poll of approved requests bills or withdraws it.",
        )
    try:
        timesheet = build_timesheet(item["approvalRequest"], entries)
    except EntryError as exc:
        # Trying again reads the same entry: the job fails, naming it (the delivery says so).
        raise Rejected(f"Clockify sent an unreadable time entry: {exc}") from None
    remember_approved(workspace_id, timesheet, now=utcnow())
    return event.with_timesheet(timesheet)

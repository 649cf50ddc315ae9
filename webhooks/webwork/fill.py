"""Webhook events and polled deliveries made ready to bill (``trackers.fill_event``).

- A delivery stored by a poll already carries the rows the poll listed: it is not read again.
  Only a row whose project's billability WebWork has not told is looked at: the catalog is
  refreshed for it (once, single-flight), else the approval waits, never billed as billable.
- A thin webhook event (the id only) is filled with its rows from WebWork; a full one is read
  again when the account is connected, so a webhook and a poll of one approval carry the same
  rows and revision (billed once). Without a connected account the event is used as sent.
"""

from __future__ import annotations

from connector import db, worker
from connector.models import ConnectionStatus, Workspace, utcnow
from connector.providers.base import RetryLater
from webhooks.webwork.catalog import Catalog
from webhooks.webwork.client import Forbidden, ReconnectRequired, TrackerError, Unavailable
from webhooks.webwork.connection import WAIT_RECONNECT, WAIT_TRACKER_DATA, client_for, store_for
from webhooks.webwork.connection_health import hold
from webhooks.webwork.events import Event
from webhooks.webwork.poll_memory import record
from webhooks.webwork.rates import cached_catalog, catalog_for, refresh_for_unknown
from webhooks.webwork.timesheet_events import (
    enrich_row,
    event_timesheet,
    named_ids,
    rows_hash,
    unknown_billability,
)


def _tracker_workspace(workspace_id: int) -> str:
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        assert workspace is not None
        return workspace.tracker_workspace_id


def _refused(workspace_id: int, exc: TrackerError) -> worker.WaitFor:
    """A confirmed refusal: hold the connection (it re-checks by itself) and wait for it."""
    if isinstance(exc, ReconnectRequired | Forbidden):
        hold(workspace_id, exc.message)
    return worker.WaitFor(
        WAIT_RECONNECT, f"Waiting for WebWork to accept the connection: {exc.message}"
    )


def _with_catalog(event: Event, catalog: Catalog) -> Event:
    days = {
        day: [enrich_row(row, catalog) if "billable" not in row else row for row in rows]
        for day, rows in event.timesheet["daily_breakdown"].items()
    }
    return Event(
        type=event.type,
        timestamp=event.timestamp,
        workspace_id=event.workspace_id,
        timesheet={**event.timesheet, "daily_breakdown": days},
    )


def check_billability(workspace_id: int, event: Event) -> Event | None:
    """A polled approval as it is (None), or with the billability it lacked; waits otherwise."""
    unknown = unknown_billability(event.timesheet)
    if not unknown:
        return None  # the common case: no read, no query
    catalog = cached_catalog(workspace_id) or Catalog()
    if catalog.worth_refreshing(set(unknown), set()):
        try:
            catalog = refresh_for_unknown(
                workspace_id, client_for(workspace_id), catalog, set(unknown), set()
            )
        except Unavailable as exc:
            raise RetryLater(exc.message, retry_after=exc.retry_after) from None
        except TrackerError as exc:
            raise _refused(workspace_id, exc) from None
    filled = _with_catalog(event, catalog)
    still = unknown_billability(filled.timesheet)
    if still:
        raise worker.WaitFor(
            WAIT_TRACKER_DATA,
            f"WebWork does not say whether project(s) {', '.join(still)[:200]} are billable "
            "(not in its project list, or no billable flag), so this approval is not billed "
            "yet; it is billed when WebWork's projects next show it (refreshed hourly, or "
            "`tracker poll ID --refresh-rates`).",
        )
    return filled


def fill_event(workspace_id: int, event: Event, *, polled: bool = False) -> Event | None:
    """The approval's rows read from WebWork (same enrichment as a poll, so the same content
    revision: a webhook and a poll of one approval bill it once). None when WebWork is not
    connected, or when it does not show a full event's timesheet as approved (the event is
    then used as sent; the next poll withdraws it if WebWork took the approval back)."""
    if polled:
        return check_billability(workspace_id, event)
    row = store_for(workspace_id).connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return None
    try:
        client = client_for(workspace_id)
        catalog = catalog_for(workspace_id, client)
        tracker_ws = _tracker_workspace(workspace_id)
        raw = client.get_timesheet(tracker_ws, event.timesheet_id)
        if raw is not None:
            catalog = refresh_for_unknown(workspace_id, client, catalog, *named_ids(raw))
    except (ReconnectRequired, Forbidden) as exc:
        raise _refused(workspace_id, exc) from None
    except Unavailable as exc:
        raise RetryLater(exc.message, retry_after=exc.retry_after) from None
    except TrackerError as exc:
        raise RetryLater(f"WebWork could not be read: {exc.message}") from None
    if raw is None or str(raw.get("status") or "").lower() != "approved":
        if not event.is_thin:
            return None
        state = "not found" if raw is None else f"status {raw.get('status')!r}"
        raise worker.WaitFor(
            WAIT_TRACKER_DATA,
            f"WebWork does not show timesheet {event.timesheet_id[:80]} as approved ({state}); "
            "the approval waits for the next poll.",
        )
    timesheet = event_timesheet(raw, catalog)
    # Remember it as seen, so the next poll does not deliver the same approval again.
    record(workspace_id, event.timesheet_id, status="approved", digest=rows_hash(raw), now=utcnow())
    filled = Event(
        type=event.type,
        timestamp=event.timestamp,
        workspace_id=event.workspace_id,
        timesheet=timesheet,
    )
    return check_billability(workspace_id, filled) or filled

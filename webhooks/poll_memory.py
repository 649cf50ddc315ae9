"""What a tracker's reconciling poll remembers of each timesheet (``TrackerTimesheetSeen``:
status and a hash of its rows) and what it stores for a change: the delivery and its job, in one
transaction, in the same inbox as a webhook (part of the shared poll machinery; every function
takes the source)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector import db, trackers
from connector.models import Delivery, DeliveryStatus, Timesheet, TrackerTimesheetSeen
from webhooks.inbox import insert_job

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class Change:
    """A change a poll found, stored as a delivery: ``approval``, ``withdrawal``, ``invalid``
    (stored under the source's event type of that kind; an invalid one as an approval)."""

    kind: str
    body: bytes
    error: str | None = None

    def event_type(self, source: str) -> str | None:
        kind = trackers.WITHDRAWAL if self.kind == "withdrawal" else trackers.APPROVAL
        return next(iter(sorted(trackers.get_source(source).types_of(kind))), None)


@dataclass(frozen=True)
class Seen:
    """What was known of a timesheet before this poll (its memory row and its live approval)."""

    status: str | None
    rows_hash: str | None
    error: str | None
    live_approved: bool
    live_revision: str | None

    @property
    def known(self) -> bool:
        return self.status is not None


def seen_row(
    s: Session, source: str, workspace_id: int, timesheet_id: str
) -> TrackerTimesheetSeen | None:
    return s.scalars(
        select(TrackerTimesheetSeen).where(
            TrackerTimesheetSeen.workspace_id == workspace_id,
            TrackerTimesheetSeen.source == source,
            TrackerTimesheetSeen.timesheet_id == timesheet_id,
        )
    ).one_or_none()


def what_was_seen(source: str, workspace_id: int, timesheet_id: str) -> Seen:
    with db.new_session() as s:
        seen = seen_row(s, source, workspace_id, timesheet_id)
        live = s.scalars(
            select(Timesheet).where(
                Timesheet.workspace_id == workspace_id,
                Timesheet.source == source,
                Timesheet.timesheet_id == timesheet_id,
            )
        ).one_or_none()
        return Seen(
            status=seen.status if seen else None,
            rows_hash=seen.rows_hash if seen else None,
            error=seen.error if seen else None,
            live_approved=live is not None and live.status == "approved",
            live_revision=(live.summary or {}).get("content_revision") if live else None,
        )


def delivery_id(timesheet_id: str, transitions: int, what: str) -> str:
    digest = hashlib.sha256(timesheet_id.encode()).hexdigest()[:32]
    return f"poll:{digest}:{transitions}:{what}"


def _store_delivery(
    s: Session,
    source: str,
    workspace_id: int,
    now: datetime,
    *,
    webhook_id: str,
    change: Change,
    timesheet_id: str,
    status: DeliveryStatus,
    error: str | None,
) -> tuple[int, int | None]:
    delivery = Delivery(
        workspace_id=workspace_id,
        source=source,
        webhook_id=webhook_id,
        event_type=change.event_type(source),
        event_timestamp=now,
        timesheet_id=timesheet_id,
        received_at=now,
        # Marks it as read from the tracker's API: the pipeline bills the rows it carries.
        headers=trackers.polled_headers(source),
        body=change.body,
        status=status,
        error=error,
    )
    s.add(delivery)
    s.flush()
    job_id = None
    if status == DeliveryStatus.ACCEPTED:
        job_id = insert_job(s, workspace_id, "process_delivery", delivery.id)
    return delivery.id, job_id


def record(
    source: str,
    workspace_id: int,
    timesheet_id: str,
    *,
    status: str,
    digest: str | None,
    now: datetime,
    change: Change | None = None,
    auto_invoicing: bool = True,
) -> tuple[int | None, int | None]:
    """Update what was seen and, for a change, store its delivery + job: one transaction.

    Returns (delivery id, job id to nudge). A concurrent writer of the same change (another
    poller, a webhook's fill) makes the unique keys refuse the second: it is skipped (None,
    None), never doubled.
    """
    found: tuple[int | None, int | None] = (None, None)
    try:
        with db.session_scope() as s:
            seen = seen_row(s, source, workspace_id, timesheet_id)
            if seen is None:
                seen = TrackerTimesheetSeen(
                    workspace_id=workspace_id,
                    source=source,
                    timesheet_id=timesheet_id,
                    status=status,
                    transitions=0,
                    first_seen_at=now,
                )
                s.add(seen)
            seen.last_seen_at = now
            if change is not None:
                seen.transitions = int(seen.transitions or 0) + 1
                error = change.error
                delivery_status = DeliveryStatus.ACCEPTED
                if change.kind == "invalid":
                    delivery_status = DeliveryStatus.INVALID
                elif not auto_invoicing:
                    delivery_status = DeliveryStatus.SKIPPED
                    error = "automatic invoicing is off for this workspace"
                found = _store_delivery(
                    s,
                    source,
                    workspace_id,
                    now,
                    webhook_id=delivery_id(
                        timesheet_id, seen.transitions, (digest or change.kind)[:16]
                    ),
                    change=change,
                    timesheet_id=timesheet_id,
                    status=delivery_status,
                    error=error,
                )
                seen.last_delivery_id = found[0]
            seen.status = status
            seen.rows_hash = digest if digest is not None else seen.rows_hash
            seen.error = change.error if change is not None and change.kind == "invalid" else None
    except IntegrityError:
        log.info("timesheet %r was recorded concurrently; skipped here", timesheet_id)
        return None, None
    return found


def seen_count(source: str, workspace_id: int) -> int:
    with db.new_session() as s:
        return (
            s.query(TrackerTimesheetSeen)
            .filter_by(workspace_id=workspace_id, source=source)
            .count()
        )

"""What the reconciling poll remembers of each approval request (``TrackerTimesheetSeen``: its
status and a hash of its rows) and what it stores for a change: delivery and job, one
transaction, under a deterministic delivery id (two pollers, or a poll and a webhook's fill,
never store one change twice)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector import db, trackers
from connector.models import Delivery, DeliveryStatus, Timesheet, TrackerTimesheetSeen
from webhooks.clockify import SOURCE
from webhooks.clockify.events import APPROVAL_TYPE, WITHDRAWAL_TYPE
from webhooks.inbox import insert_job

log = logging.getLogger(__name__)

APPROVED = "approved"


@dataclass(frozen=True)
class Change:
    """A change a poll found, stored as a delivery: ``approval`` or ``withdrawal``."""

    kind: str
    body: bytes
    event_timestamp: datetime

    @property
    def event_type(self) -> str:
        return WITHDRAWAL_TYPE if self.kind == "withdrawal" else APPROVAL_TYPE


@dataclass(frozen=True)
class Seen:
    status: str | None
    rows_hash: str | None
    live_approved: bool
    live_revision: str | None

    @property
    def known(self) -> bool:
        return self.status is not None


def rows_hash(timesheet: dict[str, Any]) -> str:
    """What changes when an approval's content changes (member, period, rows)."""
    content = {k: timesheet.get(k) for k in ("member", "date_from", "date_to", "rows")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _seen_row(s: Session, workspace_id: int, request_id: str) -> TrackerTimesheetSeen | None:
    return s.scalars(
        select(TrackerTimesheetSeen).where(
            TrackerTimesheetSeen.workspace_id == workspace_id,
            TrackerTimesheetSeen.source == SOURCE,
            TrackerTimesheetSeen.timesheet_id == request_id,
        )
    ).one_or_none()


def what_was_seen(workspace_id: int, request_id: str) -> Seen:
    with db.new_session() as s:
        seen = _seen_row(s, workspace_id, request_id)
        live = s.scalars(
            select(Timesheet).where(
                Timesheet.workspace_id == workspace_id,
                Timesheet.source == SOURCE,
                Timesheet.timesheet_id == request_id,
            )
        ).one_or_none()
        return Seen(
            status=seen.status if seen else None,
            rows_hash=seen.rows_hash if seen else None,
            live_approved=live is not None and live.status == APPROVED,
            live_revision=(live.summary or {}).get("content_revision") if live else None,
        )


def _delivery_id(request_id: str, transitions: int, what: str) -> str:
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:32]
    return f"poll:{digest}:{transitions}:{what}"


def _store(
    s: Session,
    workspace_id: int,
    seen: TrackerTimesheetSeen,
    change: Change,
    *,
    what: str,
    now: datetime,
    auto_invoicing: bool,
) -> tuple[int, int | None]:
    seen.transitions = int(seen.transitions or 0) + 1
    status = DeliveryStatus.ACCEPTED if auto_invoicing else DeliveryStatus.SKIPPED
    delivery = Delivery(
        workspace_id=workspace_id,
        source=SOURCE,
        webhook_id=_delivery_id(seen.timesheet_id, seen.transitions, what[:16]),
        event_type=change.event_type,
        event_timestamp=change.event_timestamp,
        timesheet_id=seen.timesheet_id,
        received_at=now,
        headers=trackers.polled_headers(SOURCE),  # read from Clockify's API: bill its rows
        body=change.body,
        status=status,
        error=None if auto_invoicing else "automatic invoicing is off for this workspace",
    )
    s.add(delivery)
    s.flush()
    seen.last_delivery_id = delivery.id
    job_id = None
    if status == DeliveryStatus.ACCEPTED:
        job_id = insert_job(s, workspace_id, "process_delivery", delivery.id)
    return delivery.id, job_id


def record(
    workspace_id: int,
    request_id: str,
    *,
    status: str,
    digest: str | None,
    now: datetime,
    change: Change | None = None,
    auto_invoicing: bool = True,
) -> tuple[int | None, int | None]:
    """Update what was seen and, for a change, store its delivery + job (one transaction).
    Returns (delivery id, job id); a concurrent writer of the same change wins: (None, None)."""
    found: tuple[int | None, int | None] = (None, None)
    try:
        with db.session_scope() as s:
            seen = _seen_row(s, workspace_id, request_id)
            if seen is None:
                seen = TrackerTimesheetSeen(
                    workspace_id=workspace_id,
                    source=SOURCE,
                    timesheet_id=request_id,
                    status=status,
                    transitions=0,
                    first_seen_at=now,
                )
                s.add(seen)
            seen.last_seen_at = now
            if change is not None:
                what = digest or change.kind
                found = _store(
                    s,
                    workspace_id,
                    seen,
                    change,
                    what=what,
                    now=now,
                    auto_invoicing=auto_invoicing,
                )
            seen.status = status
            seen.rows_hash = digest if digest is not None else seen.rows_hash
            seen.error = None
    except IntegrityError:
        log.info("Clockify request %r was recorded concurrently; skipped here", request_id)
        return None, None
    return found


def remember_approved(workspace_id: int, timesheet: dict[str, Any], *, now: datetime) -> None:
    """A webhook's approval, read from Clockify: the next poll does not deliver it again."""
    record(workspace_id, timesheet["id"], status=APPROVED, digest=rows_hash(timesheet), now=now)

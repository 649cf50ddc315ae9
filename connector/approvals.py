"""Approvals and their drafts: the read-side queries shared by the admin console and the API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from connector.models import HOLD_STATUSES, Draft, DraftStatus, Timesheet

# Everything an admin can unblock: the "held" filter.
HELD_STATUSES = frozenset(HOLD_STATUSES | {DraftStatus.RECONNECT_NEEDED})


def find_timesheet(s: Session, workspace_id: int, timesheet_id: str) -> Timesheet | None:
    """A workspace's approval by the tracker's timesheet id."""
    return s.scalars(
        select(Timesheet).where(
            Timesheet.workspace_id == workspace_id, Timesheet.timesheet_id == timesheet_id
        )
    ).first()


def live_drafts(ts: Timesheet) -> list[Draft]:
    """The drafts of the approval's current revision (what finance should see)."""
    return [
        d for d in ts.drafts if d.revision == ts.revision and d.status != DraftStatus.SUPERSEDED
    ]


def earlier_drafts(ts: Timesheet) -> list[Draft]:
    live = {d.id for d in live_drafts(ts)}
    return [d for d in ts.drafts if d.id not in live]


def approvals_query(
    workspace_id: int,
    *,
    statuses: Iterable[str] | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
) -> Select[tuple[Timesheet]]:
    """Approvals of a workspace, newest first, optionally those with a live draft in
    ``statuses`` and whose period overlaps ``day_from..day_to``."""
    stmt = select(Timesheet).where(Timesheet.workspace_id == workspace_id)
    if statuses:
        stmt = stmt.where(
            Timesheet.id.in_(
                select(Draft.timesheet_pk).where(
                    Draft.workspace_id == workspace_id,
                    Draft.status.in_(list(statuses)),
                    Draft.revision == Timesheet.revision,
                )
            )
        )
    if day_from:
        stmt = stmt.where(or_(Timesheet.date_to.is_(None), Timesheet.date_to >= day_from))
    if day_to:
        stmt = stmt.where(or_(Timesheet.date_from.is_(None), Timesheet.date_from <= day_to))
    return stmt.order_by(Timesheet.approved_at.desc(), Timesheet.id.desc())


def count(s: Session, stmt: Select[tuple[Timesheet]]) -> int:
    return s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0

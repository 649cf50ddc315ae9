"""Approvals and their drafts: the read-side queries shared by the admin console and the API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from connector.models import HOLD_STATUSES, Draft, DraftStatus, Job, JobState, Timesheet

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
    """The drafts of the approval's current revision (what finance should see), and any a
    person must look at (withdrawn after finance sent it)."""
    return [
        d
        for d in ts.drafts
        if (d.revision == ts.revision and d.status != DraftStatus.SUPERSEDED)
        or d.status == DraftStatus.NEEDS_ATTENTION
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


# --- drafts across approvals (the Drafts page and GET /api/v1/drafts) ---------------------------
def live_drafts_query(
    workspace_id: int,
    *,
    statuses: Iterable[str] | None = None,
    customer_id: str | None = None,
    provider_status: str | None = None,
) -> Select[tuple[Draft, Timesheet]]:
    """Drafts of every approval's live revision, newest approval first; ``customer_id`` matches
    the accounting customer's id, ``provider_status`` where the invoice stands at the provider."""
    stmt = (
        select(Draft, Timesheet)
        .join(Timesheet, Timesheet.id == Draft.timesheet_pk)
        .where(
            Draft.workspace_id == workspace_id,
            # A draft needing attention stays listed after its approval was withdrawn.
            or_(Draft.revision == Timesheet.revision, Draft.status == DraftStatus.NEEDS_ATTENTION),
            Draft.status != DraftStatus.SUPERSEDED,
        )
    )
    if statuses:
        stmt = stmt.where(Draft.status.in_(list(statuses)))
    if customer_id:
        stmt = stmt.where(Draft.customer_id == customer_id)
    if provider_status:
        stmt = stmt.where(Draft.provider_status == provider_status)
    return stmt.order_by(
        Timesheet.date_from.desc(), Timesheet.id.desc(), Draft.customer_name, Draft.id
    )


def totals_by_currency(s: Session, stmt: Select[tuple[Draft, Timesheet]]) -> dict[str, Decimal]:
    """Sum of the drafts' totals per currency (Decimal; totals are stored as exact strings)."""
    sub = stmt.order_by(None).with_only_columns(Draft.currency, Draft.total).subquery()
    totals: dict[str, Decimal] = {}
    for currency, total in s.execute(select(sub.c.currency, sub.c.total)):
        if currency and total is not None:
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(total))
    return dict(sorted(totals.items()))


def draft_customers(s: Session, workspace_id: int) -> list[tuple[str, str]]:
    """(id, name) of every customer with a live draft, for the customer filter."""
    rows = s.execute(
        select(Draft.customer_id, func.max(Draft.customer_name))
        .join(Timesheet, Timesheet.id == Draft.timesheet_pk)
        .where(
            Draft.workspace_id == workspace_id,
            Draft.revision == Timesheet.revision,
            Draft.customer_id.is_not(None),
        )
        .group_by(Draft.customer_id)
    ).all()
    return sorted(((cid, name or cid) for cid, name in rows), key=lambda r: r[1].lower())


def count_rows(s: Session, stmt: Select[Any]) -> int:
    return s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def rebilling_timesheets(s: Session, workspace_id: int) -> set[int]:
    """Approvals with a re-bill queued or running (after a mapping, rate or reconnect): their held
    drafts are shown as "re-billing..." instead of their stale hold text."""

    payloads = s.scalars(
        select(Job.payload).where(
            Job.workspace_id == workspace_id,
            Job.kind == "bill_timesheet",
            Job.state.in_([JobState.PENDING, JobState.RUNNING]),
        )
    )
    return {int(p["timesheet_pk"]) for p in payloads if p and p.get("timesheet_pk") is not None}

"""``tracker poll --refresh-rates``: approvals whose unsent drafts were priced with a WebWork
rate that has since changed are billed again, through the pipeline's re-bill (its drafts are
withdrawn first and new ones created under fresh keys). Drafts finance already sent are never
touched: those approvals are counted and left to the admin's Re-bill button."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from connector import db, trackers
from connector.models import Draft, DraftStatus, Timesheet, TimesheetStatus, Workspace
from connector.pipeline import RebillRefused, release_holds, request_rebill, run_billing
from webhooks.webwork import SOURCE

# What the provider shows as not yet sent (None: never read back).
UNSENT = (None, "draft")
PRICED = (DraftStatus.DRAFTED, DraftStatus.PENDING)


@dataclass
class RateChanges:
    rebilled: int = 0  # approvals queued for a re-bill
    sent: int = 0  # approvals whose new rates differ but a draft was already sent: left alone
    held: int = 0  # approvals with held drafts queued to be billed again


def _priced_lines(lines: list[dict[str, Any]]) -> Counter[tuple[str, str, str, str]]:
    return Counter(
        (
            str(line.get("project_id")),
            str(line.get("date_from")),
            str(line.get("date_to")),
            str(line.get("unit_price")),
        )
        for line in lines
    )


def _planned(workspace: Workspace, ts_row: Timesheet, s: Any) -> dict[str | None, Counter]:
    timesheet = trackers.normalize_timesheet(ts_row.source, ts_row.content or {})
    result = run_billing(s, workspace, timesheet)
    return {
        plan.customer.id: _priced_lines(
            [
                {
                    "project_id": line.project_id,
                    "date_from": line.date_from.isoformat(),
                    "date_to": line.date_to.isoformat(),
                    "unit_price": str(line.unit_price),
                }
                for line in plan.lines
            ]
        )
        for plan in result.drafts
    }


def _changed(workspace: Workspace, ts_row: Timesheet, drafts: list[Draft], s: Any) -> bool:
    """Would billing now price any of these drafts' lines at another rate?"""
    planned = _planned(workspace, ts_row, s)
    for draft in drafts:
        now = planned.get(draft.customer_id)
        if now is not None and now != _priced_lines(draft.lines or []):
            return True
    return False


def rebill_changed_rates(workspace_id: int) -> RateChanges:
    """Queue a re-bill for each approval whose unsent drafts' rates changed (see module)."""
    found = RateChanges()
    to_rebill: list[int] = []
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        assert workspace is not None
        rows = s.execute(
            select(Timesheet, Draft)
            .join(
                Draft,
                (Draft.timesheet_pk == Timesheet.id) & (Draft.revision == Timesheet.revision),
            )
            .where(
                Timesheet.workspace_id == workspace_id,
                Timesheet.source == SOURCE,
                Timesheet.status == TimesheetStatus.APPROVED,
                Draft.status.in_(PRICED),
            )
        ).all()
        by_timesheet: dict[int, tuple[Timesheet, list[Draft]]] = {}
        for ts_row, draft in rows:
            by_timesheet.setdefault(ts_row.id, (ts_row, []))[1].append(draft)
        for ts_row, drafts in by_timesheet.values():
            if not _changed(workspace, ts_row, drafts, s):
                continue
            if any(d.provider_status not in UNSENT for d in drafts):
                found.sent += 1
            else:
                to_rebill.append(ts_row.id)
    for timesheet_pk in to_rebill:
        try:
            if request_rebill(workspace_id, timesheet_pk) is not None:
                found.rebilled += 1
        except RebillRefused:
            continue  # withdrawn meanwhile: nothing to re-bill
    found.held = release_holds(workspace_id)
    return found

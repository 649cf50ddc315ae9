"""Backfill: bring in every timesheet approved in WebWork since a date.

It is a poll over a longer window, approved timesheets only (``status=approved``), through the
same dedupe memory and inbox, so it is safe to interrupt and re-run: what was recorded is
skipped, what was not is delivered. A dry run reads WebWork and prices each approval with the
current mappings and rates (admin's and WebWork's) but writes nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from connector import billing, db
from connector.models import HOLD_STATUSES, Delivery, Draft, DraftStatus, Timesheet, Workspace
from connector.pipeline import billing_settings, load_mappings, load_rates
from connector.rates import to_entry
from webhooks.webwork.client import WebWorkClient
from webhooks.webwork.events import Event
from webhooks.webwork.normalize import normalize_timesheet
from webhooks.webwork.poller import PollReport, poll_workspace
from webhooks.webwork.rates import Catalog


@dataclass
class BackfillReport:
    poll: PollReport
    drafts: int = 0  # drafts that would be created (dry run) / were planned
    holds: int = 0  # drafts that would be / were held
    drafted: int = 0  # drafts confirmed by the provider when the run ended
    dry_run: bool = False


def _price(workspace_id: int, event: Event, report: BackfillReport, extra: Any) -> None:
    """What billing this approval now would give (no writes): counts drafts and holds."""
    timesheet = normalize_timesheet(event.timesheet)
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        assert workspace is not None
        rates = load_rates(s, workspace_id)
        if extra:  # a dry run: WebWork's rates were read but not stored
            rates = billing.RateTable(entries=rates.entries + tuple(extra))
        result = billing.bill(
            timesheet, billing_settings(workspace), load_mappings(s, workspace), rates
        )
    report.drafts += len(result.drafts)
    report.holds += len({h.subject_key for h in result.holds})


def backfill(
    workspace_id: int,
    since: date,
    *,
    until: date | None = None,
    dry_run: bool = False,
    client: WebWorkClient | None = None,
    on_page: Callable[[BackfillReport], None] | None = None,
) -> BackfillReport:
    report = BackfillReport(poll=PollReport(), dry_run=dry_run)

    def on_approval(event: Event, catalog: Catalog) -> None:
        extra = None
        if dry_run:  # WebWork's rates were read but not stored: price with them in memory
            extra = [to_entry(r) for r in catalog.rates]
        _price(workspace_id, event, report, extra)

    def page_done(poll: PollReport) -> None:
        report.poll = poll
        if on_page is not None:
            on_page(report)

    poll_report = poll_workspace(
        workspace_id,
        date_from=since,
        date_to=until,
        status="approved",
        dry_run=dry_run,
        client=client,
        on_page=page_done,
        on_approval=on_approval,
        record_status=False,
    )
    report.poll = poll_report
    if not dry_run and poll_report.delivery_ids:
        with db.new_session() as s:
            ids = list(
                s.scalars(
                    select(Timesheet.id)
                    .join(
                        Delivery,
                        (Delivery.workspace_id == Timesheet.workspace_id)
                        & (Delivery.timesheet_id == Timesheet.timesheet_id),
                    )
                    .where(Delivery.id.in_(poll_report.delivery_ids))
                )
            )
            if ids:
                report.drafted = int(
                    s.scalar(
                        select(func.count(Draft.id)).where(
                            Draft.timesheet_pk.in_(ids), Draft.status == DraftStatus.DRAFTED
                        )
                    )
                    or 0
                )
                held = int(
                    s.scalar(
                        select(func.count(Draft.id)).where(
                            Draft.timesheet_pk.in_(ids), Draft.status.in_(list(HOLD_STATUSES))
                        )
                    )
                    or 0
                )
                report.holds = max(report.holds, held)
    return report

"""Backfill: bring in every timesheet approved in WebWork since a date.

It is a poll over a longer window, approved timesheets only (``status=approved``), through the
same dedupe memory and inbox, so it is safe to interrupt and re-run: what was recorded is
skipped, what was not is delivered; the worker drafts what was recorded. Each approval is also
priced at once with the current mappings and rates (``pipeline.run_billing``, no writes), so the
progress shows the drafts that will be (or, in a dry run, would be) created. A dry run reads
WebWork but writes nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select

from connector import db
from connector.models import (
    HOLD_STATUSES,
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    Timesheet,
    TrackerRate,
    Workspace,
)
from connector.pipeline import run_billing
from webhooks.webwork.catalog import Catalog
from webhooks.webwork.client import WebWorkClient
from webhooks.webwork.events import Event
from webhooks.webwork.normalize import normalize_timesheet
from webhooks.webwork.poller import PollReport, poll_workspace

FINISHED = (DeliveryStatus.PROCESSED, DeliveryStatus.FAILED, DeliveryStatus.INVALID)


@dataclass
class BackfillReport:
    poll: PollReport = field(default_factory=PollReport)
    drafts: int = 0  # drafts the approvals found bill into now (or would, in a dry run)
    holds: int = 0  # customers/projects they would be held for
    dry_run: bool = False


@dataclass(frozen=True)
class Drafting:
    """How far the worker is with the approvals a backfill recorded."""

    approvals: int  # recorded (deliveries with a job)
    finished: int  # their jobs ran to an outcome
    drafted: int  # drafts the provider confirmed
    held: int  # drafts held for a person (mapping, rate, currency)

    @property
    def done(self) -> bool:
        return self.finished >= self.approvals


def _price(workspace_id: int, event: Event, report: BackfillReport, catalog: Catalog) -> None:
    """What billing this approval now gives (no writes): counts drafts and holds."""
    timesheet = normalize_timesheet(event.timesheet)
    # A dry run stored no rates: price with those WebWork gave, held in memory.
    unstored: list[TrackerRate] | None = catalog.rates if report.dry_run else None
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        assert workspace is not None
        result = run_billing(s, workspace, timesheet, tracker_rates=unstored)
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
    report = BackfillReport(dry_run=dry_run)

    def page_done(poll: PollReport) -> None:
        report.poll = poll
        if on_page is not None:
            on_page(report)

    report.poll = poll_workspace(
        workspace_id,
        date_from=since,
        date_to=until,
        status="approved",
        dry_run=dry_run,
        client=client,
        on_page=page_done,
        on_approval=lambda event, catalog: _price(workspace_id, event, report, catalog),
        record_status=False,
    )
    return report


def drafting(workspace_id: int, delivery_ids: list[int]) -> Drafting:
    """Where the worker stands with these recorded approvals (read from the database)."""
    if not delivery_ids:
        return Drafting(0, 0, 0, 0)
    with db.new_session() as s:
        accepted = Delivery.id.in_(delivery_ids) & (Delivery.status != DeliveryStatus.SKIPPED)
        approvals = int(s.scalar(select(func.count(Delivery.id)).where(accepted)) or 0)
        finished = int(
            s.scalar(select(func.count(Delivery.id)).where(accepted, Delivery.status.in_(FINISHED)))
            or 0
        )
        live = (
            select(Draft.status, func.count(Draft.id))
            .join(
                Timesheet,
                (Draft.timesheet_pk == Timesheet.id) & (Draft.revision == Timesheet.revision),
            )
            .join(
                Delivery,
                (Delivery.workspace_id == Timesheet.workspace_id)
                & (Delivery.timesheet_id == Timesheet.timesheet_id),
            )
            .where(Timesheet.workspace_id == workspace_id, Delivery.id.in_(delivery_ids))
            .group_by(Draft.status)
        )
        by_status = dict(s.execute(live).all())
    return Drafting(
        approvals=approvals,
        finished=finished,
        drafted=int(by_status.get(DraftStatus.DRAFTED, 0)),
        held=sum(int(n) for status, n in by_status.items() if status in HOLD_STATUSES),
    )

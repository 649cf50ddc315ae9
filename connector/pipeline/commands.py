"""What the console, the API and the connect pages call: release holds, retry, re-bill, preview."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select

from connector import db, trackers, worker
from connector.models import (
    HOLD_STATUSES,
    Draft,
    DraftStatus,
    Timesheet,
    TimesheetStatus,
    Workspace,
)
from connector.pipeline.draft_status import TO_PUSH
from connector.pipeline.inputs import run_billing
from connector.pipeline.invoice_requests import line_to_json
from connector.trackers import TrackerEvent as Event


def _enqueue_bill(
    workspace_id: int, timesheet_pks: Iterable[int], *, retry_failed: bool
) -> list[int]:
    job_ids = []
    with db.session_scope() as s:
        for timesheet_pk in timesheet_pks:
            job = worker.new_job(
                workspace_id, "bill_timesheet", timesheet_pk=timesheet_pk, retry_failed=retry_failed
            )
            s.add(job)
            s.flush()
            job_ids.append(job.id)
    for job_id in job_ids:
        worker.job_committed(job_id)
    return job_ids


def release_holds(workspace_id: int) -> int:
    """Re-bill every approved timesheet with held drafts (after a mapping or rate change)."""
    waiting = set(HOLD_STATUSES) | {DraftStatus.RECONNECT_NEEDED}
    with db.new_session() as s:
        timesheet_pks = list(
            s.scalars(
                select(Timesheet.id)
                .join(
                    Draft,
                    (Draft.timesheet_pk == Timesheet.id) & (Draft.revision == Timesheet.revision),
                )
                .where(
                    Timesheet.workspace_id == workspace_id,
                    Timesheet.status == TimesheetStatus.APPROVED,
                    Draft.status.in_(list(waiting)),
                )
                .distinct()
            )
        )
    return len(_enqueue_bill(workspace_id, timesheet_pks, retry_failed=False))


def retry_timesheet(workspace_id: int, timesheet_pk: int) -> int | None:
    """The retry button: failed drafts of one approval are tried again."""
    with db.new_session() as s:
        ts_row = s.get(Timesheet, timesheet_pk)
        if ts_row is None or ts_row.workspace_id != workspace_id:
            return None
    return _enqueue_bill(workspace_id, [timesheet_pk], retry_failed=True)[0]


class RebillRefused(ValueError):
    """The approval cannot be re-billed now (withdrawn, or never approved)."""


def request_rebill(workspace_id: int, timesheet_pk: int) -> int | None:
    """The re-bill button: queue a job that withdraws the approval's created drafts (deleted if
    still drafts, flagged if finance sent them) and bills the revision again with the current
    mappings, rates and settings. None when the approval is not this workspace's."""
    with db.session_scope() as s:
        ts_row = s.get(Timesheet, timesheet_pk)
        if ts_row is None or ts_row.workspace_id != workspace_id:
            return None
        if ts_row.status != TimesheetStatus.APPROVED or ts_row.revision is None:
            raise RebillRefused(
                "This timesheet is not approved (it was withdrawn or is waiting for its rows), "
                "so there is nothing to re-bill."
            )
        # The job re-bills this revision only: a retried or repeated job finds the revision
        # moved on and just finishes billing instead of withdrawing the new drafts again.
        job = worker.new_job(
            workspace_id, "rebill_timesheet", timesheet_pk=ts_row.id, revision=ts_row.revision
        )
        s.add(job)
        s.flush()
        job_id = job.id
    worker.job_committed(job_id)
    return job_id


def approvals_with_created_drafts(
    workspace_id: int,
    *,
    customer_id: str | None = None,
    tracker: tuple[str, str] | None = None,
) -> int:
    """How many approved timesheets have drafts already created at the provider (optionally
    for one customer, or billing rows of one tracker client/project): a mapping, rate or
    settings change leaves those drafts as they are, so the admin is told."""
    live = or_(
        Draft.status.in_([DraftStatus.DRAFTED, DraftStatus.NEEDS_ATTENTION]),
        Draft.status.in_(list(TO_PUSH)) & (Draft.attempts > 0),
    )  # is_live() in SQL
    stmt = (
        select(Draft.timesheet_pk, Draft.covers, Draft.lines)
        .join(
            Timesheet,
            (Draft.timesheet_pk == Timesheet.id) & (Draft.revision == Timesheet.revision),
        )
        .where(
            Timesheet.workspace_id == workspace_id,
            Timesheet.status == TimesheetStatus.APPROVED,
            live,
        )
    )
    if customer_id is not None:
        stmt = stmt.where(Draft.customer_id == customer_id)
    with db.new_session() as s:
        if tracker is None:
            found = stmt.subquery()
            return int(s.scalar(select(func.count(func.distinct(found.c.timesheet_pk)))) or 0)
        return len(
            {
                pk
                for pk, covers, lines in s.execute(stmt)
                if _covers_tracker(covers, lines, *tracker)
            }
        )


def _covers_tracker(
    covers: list[list[str | None]] | None,
    lines: list[dict[str, Any]] | None,
    kind: str,
    tracker_id: str,
) -> bool:
    if covers is None:
        # Planned before drafts recorded their rows: lines name projects, never clients, so a
        # client is assumed to be on it (saying too much beats hiding a created draft).
        return kind == "client" or any(
            str(line.get("project_id")) == tracker_id for line in lines or []
        )
    index = 0 if kind == "project" else 1
    return any(pair[index] == tracker_id for pair in covers)


def future_approvals_notice(count: int) -> str | None:
    """What a change page and API response say when created drafts stay as they are."""
    if not count:
        return None
    which = "1 approval already has" if count == 1 else f"{count} approvals already have"
    return (
        f"This change applies to future approvals. {which} drafts created in the accounting "
        "system; they stay as they are. To bill such an approval again with the current "
        "mappings and rates, use Re-bill on it: its drafts are withdrawn first."
    )


def on_connection_restored(workspace_id: int) -> None:
    """Called after an admin (re)connects an accounting account: parked work resumes."""
    worker.resume_waiting(workspace_id, "reconnect_needed")
    release_holds(workspace_id)


def preview_event(workspace: Workspace, event: Event) -> dict[str, Any]:
    """What an approval would produce now, with no side effects."""
    timesheet = trackers.normalize_timesheet(event.source, event.timesheet)
    with db.new_session() as s:
        result = run_billing(s, workspace, timesheet)
    return {
        "revision": result.revision,
        "drafts": [
            {
                "customer": {"id": d.customer.id, "name": d.customer.name},
                "currency": d.currency,
                "total": str(d.total),
                "minutes": d.minutes,
                "key": d.key,
                "lines": [line_to_json(line) for line in d.lines],
            }
            for d in result.drafts
        ],
        "holds": [
            {
                "reason": h.reason,
                "subject": h.subject_key,
                "customer": {"id": h.customer.id, "name": h.customer.name} if h.customer else None,
                "message": h.message,
                "minutes": h.minutes,
                "project_ids": list(h.project_ids),
                "client_ids": list(h.client_ids),
            }
            for h in result.holds
        ],
        "excluded": {"minutes": result.excluded_minutes, "rows": result.excluded_rows},
    }

"""The job handlers the worker runs (registered on import) and the locked billing run they share.

Each handler gets the job and the app's configuration from the worker, and passes the
configuration on to what needs it (building the provider): nothing here reads it from Flask.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, update

from connector import db, observability, trackers, worker
from connector.models import (
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    Job,
    Timesheet,
    TimesheetStatus,
    Workspace,
)
from connector.pipeline.draft_status import TO_PUSH
from connector.pipeline.inputs import current_books, read_once
from connector.pipeline.planning import apply_approval, is_stale, plan_drafts, timesheet_row
from connector.pipeline.pushing import push_drafts
from connector.pipeline.withdrawing import (
    apply_withdrawal,
    effective_revision,
    start_new_generation,
    withdraw_drafts,
)
from connector.pipeline.work_locks import timesheet_lock
from connector.providers import build_provider
from connector.providers.base import (
    ReconnectNeeded,
    Rejected,
)
from connector.trackers import EventError
from connector.trackers import TrackerEvent as Event


@worker.handler("process_delivery")
def process_delivery(job: Job, config: Mapping[str, Any]) -> None:
    with db.new_session() as s:
        delivery = s.get(Delivery, job.delivery_id)
        if delivery is None:
            raise Rejected(f"delivery {job.delivery_id} no longer exists")
        try:
            event = trackers.parse_event(delivery.source, delivery.body)
        except EventError as exc:
            delivery.status = DeliveryStatus.INVALID
            delivery.error = str(exc)
            s.commit()
            return
        if trackers.kind_of(delivery.source, event.type) is None:
            # a replayed "ignored" delivery: still nothing to do
            delivery.status = DeliveryStatus.IGNORED
            s.commit()
            return
        workspace_id, source = delivery.workspace_id, delivery.source
        polled = trackers.is_polled(source, delivery.headers)

    with (
        observability.log_context(timesheet_id=event.timesheet_id),
        timesheet_lock(workspace_id, event.timesheet_id),
        read_once(),
    ):
        outcome = _process_event(workspace_id, source, event, config, polled=polled)
    with db.autocommit_session() as s:  # one statement
        s.execute(
            update(Delivery)
            .where(Delivery.id == job.delivery_id)
            .values(status=DeliveryStatus.PROCESSED, error=outcome)
        )
    observability.DELIVERIES.labels("processed").inc()


def _process_event(
    workspace_id: int,
    source: str,
    event: Event,
    config: Mapping[str, Any],
    *,
    polled: bool = False,
) -> str | None:
    kind = trackers.kind_of(source, event.type)
    if kind == trackers.APPROVAL:
        # A connected tracker account is the source of truth for the rows: thin webhook events
        # are filled and full ones re-read, so a webhook and a poll of one approval have the
        # same content revision (billed once); a polled delivery carries the rows its poll
        # read (no second read). Done before any write: it may call out.
        event = trackers.fill_event(workspace_id, source, event, polled=polled) or event
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        assert workspace is not None
        ts_row = timesheet_row(s, workspace, source, event.timesheet_id)
        if is_stale(ts_row, event):
            s.commit()
            return f"stale: a newer event for this timesheet was already applied ({event.type})"
        if kind == trackers.WITHDRAWAL:
            apply_withdrawal(s, workspace, ts_row, event, config)
            s.commit()
            return None
        if event.is_thin:
            if ts_row.content is None:
                ts_row.status = TimesheetStatus.WAITING_FOR_DATA
            ts_row.last_event_at = event.timestamp
            s.commit()
            raise worker.WaitFor(
                "tracker_data",
                f"The event carries only the timesheet id. Connect the "
                f"{trackers.display_name(source)} account so the connector can fetch the "
                "approved rows; the approval waits until then.",
            )
        try:
            apply_approval(s, workspace, ts_row, event, config)
        except (EventError, ValueError) as exc:
            s.rollback()
            raise Rejected(f"the timesheet cannot be billed: {exc}") from exc
        s.commit()
        timesheet_pk = ts_row.id
    bill_timesheet_now(workspace_id, timesheet_pk, config)
    return None


def bill_timesheet_now(
    workspace_id: int,
    timesheet_pk: int,
    config: Mapping[str, Any],
    *,
    retry_failed: bool = False,
) -> None:
    """Plan the approval's drafts and push them to the provider (under the caller's lock)."""
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        ts_row = s.get(Timesheet, timesheet_pk)
        if workspace is None or ts_row is None or ts_row.status != TimesheetStatus.APPROVED:
            return
        try:
            plan_drafts(s, workspace, ts_row, retry_failed=retry_failed)
        except ValueError as exc:
            s.rollback()
            raise Rejected(f"the timesheet cannot be billed: {exc}") from exc
        s.commit()
        books_key = current_books(s, workspace)
        s.expunge(workspace)
    if not _has_work(timesheet_pk):
        return
    try:
        provider = build_provider(workspace.id, workspace.provider, config)
    except ReconnectNeeded as exc:
        _mark_waiting_for_reconnect(timesheet_pk, str(exc))
        raise
    push_drafts(workspace, timesheet_pk, provider, books_key)


def _mark_waiting_for_reconnect(timesheet_pk: int, message: str) -> None:
    """No usable account at all (never connected, or revoked): say so on every waiting draft."""
    with db.session_scope() as s:
        ts_row = s.get(Timesheet, timesheet_pk)
        assert ts_row is not None
        for row in s.scalars(
            select(Draft).where(
                Draft.timesheet_pk == timesheet_pk,
                Draft.revision == ts_row.revision,
                Draft.status.in_(list(TO_PUSH)),
            )
        ):
            row.status = DraftStatus.RECONNECT_NEEDED
            row.error = message


def _has_work(timesheet_pk: int) -> bool:
    with db.autocommit_session() as s:  # one query
        return (
            s.scalars(
                select(Draft.id)
                .join(
                    Timesheet,
                    (Timesheet.id == Draft.timesheet_pk) & (Timesheet.revision == Draft.revision),
                )
                .where(Draft.timesheet_pk == timesheet_pk, Draft.status.in_(list(TO_PUSH)))
            ).first()
            is not None
        )


@contextmanager
def _job_timesheet_locked(job: Job) -> Iterator[int | None]:
    """The job's timesheet row id, held under the timesheet lock (None: the row is gone)."""
    timesheet_pk = int(job.payload["timesheet_pk"])
    with db.autocommit_session() as s:
        timesheet_id = s.scalar(select(Timesheet.timesheet_id).where(Timesheet.id == timesheet_pk))
    if timesheet_id is None:
        yield None
        return
    with (
        observability.log_context(timesheet_id=timesheet_id),
        timesheet_lock(job.workspace_id, timesheet_id),
        read_once(),
    ):
        yield timesheet_pk


@worker.handler("bill_timesheet")
def bill_timesheet(job: Job, config: Mapping[str, Any]) -> None:
    with _job_timesheet_locked(job) as timesheet_pk:
        if timesheet_pk is not None:
            bill_timesheet_now(
                job.workspace_id,
                timesheet_pk,
                config,
                retry_failed=bool(job.payload.get("retry_failed")),
            )


def rebill_now(
    workspace_id: int, timesheet_pk: int, revision: str, config: Mapping[str, Any]
) -> None:
    """Withdraw the approval's drafts of ``revision`` and bill it again under fresh keys."""
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        ts_row = s.get(Timesheet, timesheet_pk)
        if workspace is None or ts_row is None or ts_row.status != TimesheetStatus.APPROVED:
            return
        if ts_row.revision == revision:
            withdraw_drafts(
                s, workspace, ts_row, config, reason="re-billed with the current mappings and rates"
            )
            generation = start_new_generation(ts_row)
            ts_row.revision = effective_revision(
                ts_row.summary.get("content_revision") or revision, generation
            )
            s.commit()
    bill_timesheet_now(workspace_id, timesheet_pk, config, retry_failed=True)


@worker.handler("rebill_timesheet")
def rebill_timesheet(job: Job, config: Mapping[str, Any]) -> None:
    with _job_timesheet_locked(job) as timesheet_pk:
        if timesheet_pk is not None:
            revision = str(job.payload.get("revision") or "")
            rebill_now(job.workspace_id, timesheet_pk, revision, config)

"""Finding approvals by polling WebWork (it has no "timesheet approved" webhook).

A poll lists the workspace's timesheets whose period overlaps the window (default the last
``WEBWORK_POLL_WINDOW_DAYS`` = 62 days, so a late approval of last month's sheet is found),
all statuses, 100 per page, and compares each with what it saw before (``poll_memory``):

  approved, not seen approved with these rows   -> a stored delivery (``timesheet.approved``)
                                                   carrying the rows the list showed, and its
                                                   job: the SAME inbox and pipeline as a
                                                   webhook, with no further read of WebWork
  seen approved, now not approved               -> a ``timesheet.unapproved`` delivery: the
                                                   same withdrawal as the webhook event
  approved with other rows than seen            -> a new approval: its revision replaces the
                                                   drafts
  malformed                                     -> an ``invalid`` delivery naming the reason;
                                                   the poll goes on

A timesheet naming a project or contract the cached catalog does not know refreshes the
catalog first (once per poll, single-flight: ``rates.refresh_for_unknown``).

Exactly-once: one poll per workspace at a time (an advisory lock; a second poller returns at
once); each change gets a deterministic delivery id under the deliveries' unique key; the
pipeline bills by (timesheet id, content revision) under its per-timesheet lock, so a webhook
and a poll that see the same approval bill it once. The periodic job is ``poll_job.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app

from connector import billing, db, locks, worker
from connector.locks import LockTimeout, advisory_lock
from connector.models import ConnectionStatus, Workspace, utcnow
from webhooks.webwork.catalog import Catalog
from webhooks.webwork.client import WebWorkClient
from webhooks.webwork.connection import client_for, store_for
from webhooks.webwork.events import Event, EventError, parse_event
from webhooks.webwork.normalize import normalize_timesheet
from webhooks.webwork.poll_memory import MAX_ID_LENGTH, Change, Seen, record, seen_count
from webhooks.webwork.poll_memory import what_was_seen as _what_was_seen
from webhooks.webwork.rates import catalog_for, refresh_for_unknown
from webhooks.webwork.timesheet_events import event_body, event_timesheet, named_ids, rows_hash

log = logging.getLogger(__name__)


class PollBusy(Exception):
    """Another process is polling this workspace right now (it wins; nothing to do)."""


class Disconnected(Exception):
    """The workspace's WebWork connection was removed (or needs reconnecting) mid-poll."""


@dataclass
class PollReport:
    timesheets: int = 0  # distinct timesheets listed
    approved: int = 0
    new_approvals: int = 0  # deliveries created (or that a dry run would create)
    withdrawals: int = 0
    invalid: int = 0
    pages: int = 0
    last_page: int | None = None  # as WebWork's pagination says (None: not said)
    total: int | None = None  # timesheets WebWork says match (None: not said)
    catalog_refreshes: int = 0
    stopped: str | None = None  # why the poll ended early, in plain words
    delivery_ids: list[int] = field(default_factory=list)
    catalog: Catalog | None = None


@dataclass
class _Context:
    workspace_id: int
    tracker_ws: str
    auto_invoicing: bool
    catalog: Catalog
    client: WebWorkClient
    dry_run: bool
    report: PollReport
    now: datetime
    seen_ids: set[str] = field(default_factory=set)
    on_approval: Callable[[Event, Catalog], None] | None = None

    def record(
        self, timesheet_id: str, status: str, digest: str | None, change: Change | None = None
    ) -> int | None:
        if self.dry_run:
            return None
        delivery, job = record(
            self.workspace_id,
            timesheet_id,
            status=status,
            digest=digest,
            now=self.now,
            change=change,
            auto_invoicing=self.auto_invoicing,
        )
        if delivery is not None:
            self.report.delivery_ids.append(delivery)
        return job


def _fresh_catalog(ctx: _Context, raw: dict[str, Any]) -> Catalog:
    """The catalog, refreshed first if this timesheet names a project or contract it lacks."""
    projects, contracts = named_ids(raw)
    if not ctx.catalog.worth_refreshing(projects, contracts):
        return ctx.catalog
    before = ctx.catalog.synced_at
    ctx.catalog = refresh_for_unknown(
        ctx.workspace_id,
        ctx.client,
        ctx.catalog,
        projects,
        contracts,
        persist=not ctx.dry_run,
    )
    if ctx.catalog.synced_at != before:
        ctx.report.catalog_refreshes += 1
        ctx.report.catalog = ctx.catalog
    return ctx.catalog


def _withdrawal(ctx: _Context, timesheet_id: str, status: str, seen: Seen) -> int | None:
    if seen.status == "approved" or (not seen.known and seen.live_approved):
        ctx.report.withdrawals += 1
        body = event_body("timesheet.unapproved", ctx.tracker_ws, {"id": timesheet_id}, ctx.now)
        return ctx.record(timesheet_id, status or "unknown", None, Change("withdrawal", body))
    if seen.known and seen.status != status:
        ctx.record(timesheet_id, status, None)
    return None


def _approval(ctx: _Context, raw: dict[str, Any], timesheet_id: str, seen: Seen) -> int | None:
    ctx.report.approved += 1
    digest = rows_hash(raw)
    if seen.status == "approved" and seen.rows_hash == digest:
        return None  # nothing new since the last poll
    try:
        if len(timesheet_id) > MAX_ID_LENGTH:
            raise EventError(422, "/id", f"is longer than {MAX_ID_LENGTH} characters")
        timesheet = event_timesheet(raw, _fresh_catalog(ctx, raw))
        body = event_body("timesheet.approved", ctx.tracker_ws, timesheet, ctx.now)
        event = parse_event(body)  # the same contract a webhook must meet
        content_revision = billing.timesheet_revision(normalize_timesheet(event.timesheet))
    except (EventError, KeyError, TypeError, ValueError) as exc:
        ctx.report.invalid += 1
        reason = f"WebWork timesheet {timesheet_id[:80]} cannot be billed: {exc}"
        if seen.error == reason:
            return None
        body = json.dumps({"webwork_timesheet": raw}, default=str).encode()
        return ctx.record(
            timesheet_id[:MAX_ID_LENGTH], "invalid", digest, Change("invalid", body, reason)
        )
    if not seen.known and seen.live_approved and seen.live_revision == content_revision:
        # A webhook already brought exactly this approval in: remember it, bill nothing.
        ctx.record(timesheet_id, "approved", digest)
        return None
    ctx.report.new_approvals += 1
    if ctx.on_approval is not None:
        ctx.on_approval(event, ctx.catalog)
    return ctx.record(timesheet_id, "approved", digest, Change("approval", body))


def _handle(ctx: _Context, raw: dict[str, Any]) -> int | None:
    """One listed timesheet: compare with what was seen; returns a job id to nudge."""
    raw_id = raw.get("id")
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or str(raw_id) == "":
        ctx.report.invalid += 1
        log.warning("WebWork listed a timesheet without an id; skipped")
        return None
    timesheet_id = str(raw_id)
    if timesheet_id in ctx.seen_ids:
        return None  # the list shifted and showed it on two pages
    ctx.seen_ids.add(timesheet_id)
    ctx.report.timesheets += 1
    status = str(raw.get("status") or "").lower()
    seen = _what_was_seen(ctx.workspace_id, timesheet_id)
    if status != "approved":
        return _withdrawal(ctx, timesheet_id, status, seen)
    return _approval(ctx, raw, timesheet_id, seen)


def still_connected(workspace_id: int) -> bool:
    row = store_for(workspace_id).connection()
    return row is not None and row.status == ConnectionStatus.CONNECTED


def _config(name: str, default: Any) -> Any:
    value = current_app.config.get(name)
    return default if value is None or value == "" else value


def poll_workspace(
    workspace_id: int,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
    dry_run: bool = False,
    client: WebWorkClient | None = None,
    on_page: Callable[[PollReport], None] | None = None,
    on_approval: Callable[[Event, Catalog], None] | None = None,
    record_status: bool = True,
    refresh_catalog: bool = False,
) -> PollReport:
    """One pass over the workspace's WebWork timesheets; see the module docstring.

    Raises PollBusy (another poll runs), TrackerError (the client's classified failures) and
    Disconnected (connection removed mid-poll, after what was already recorded).
    """
    # The job outbox's lease: the lock lapses as quickly as a killed worker's job is taken
    # over, and is renewed while this poll runs (the worker's heartbeat, and after each page).
    lease = worker.settings().lease_seconds
    try:
        with advisory_lock(f"webwork-poll:{workspace_id}", ttl=lease, timeout=0.0, keepalive=True):
            return _poll_locked(
                workspace_id,
                window=(date_from, date_to),
                status=status,
                dry_run=dry_run,
                client=client,
                on_page=on_page,
                on_approval=on_approval,
                record_status=record_status,
                refresh_catalog=refresh_catalog,
            )
    except LockTimeout:
        raise PollBusy("another poll of this workspace is running") from None


def _context(
    workspace_id: int,
    client: WebWorkClient,
    *,
    dry_run: bool,
    refresh_catalog: bool,
    on_approval: Callable[[Event, Catalog], None] | None,
) -> _Context:
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        if workspace is None:
            raise Disconnected("the workspace no longer exists")
        tracker_ws = workspace.tracker_workspace_id
        auto_invoicing = bool(workspace.auto_invoicing)
    catalog = catalog_for(workspace_id, client, force=refresh_catalog, persist=not dry_run)
    report = PollReport(catalog=catalog)
    return _Context(
        workspace_id=workspace_id,
        tracker_ws=tracker_ws,
        auto_invoicing=auto_invoicing,
        catalog=catalog,
        client=client,
        dry_run=dry_run,
        report=report,
        now=utcnow(),
        on_approval=on_approval,
    )


def _poll_locked(
    workspace_id: int,
    *,
    window: tuple[date | None, date | None],
    status: str | None,
    dry_run: bool,
    client: WebWorkClient | None,
    on_page: Callable[[PollReport], None] | None,
    on_approval: Callable[[Event, Catalog], None] | None,
    record_status: bool,
    refresh_catalog: bool,
) -> PollReport:
    client = client or client_for(workspace_id)
    store = store_for(workspace_id)
    if record_status and not dry_run:
        store.update_meta(last_poll_at=utcnow().isoformat())
    ctx = _context(
        workspace_id,
        client,
        dry_run=dry_run,
        refresh_catalog=refresh_catalog,
        on_approval=on_approval,
    )
    today = utcnow().date()
    date_from = window[0] or (today - timedelta(days=int(_config("WEBWORK_POLL_WINDOW_DAYS", 62))))
    for page in client.timesheet_pages(
        ctx.tracker_ws, date_from=date_from, date_to=window[1] or today, status=status
    ):
        if not dry_run and not still_connected(workspace_id):
            ctx.report.stopped = "the WebWork connection was removed during the poll"
            break
        ctx.report.pages += 1
        ctx.report.last_page, ctx.report.total = page.last_page, page.total
        jobs_to_nudge = [
            job_id for raw in page.items if (job_id := _page_item(ctx, raw)) is not None
        ]
        # Page by page, so a fault on a later page delays nothing already recorded.
        for job_id in jobs_to_nudge:
            worker.job_committed(job_id)  # inline in immediate mode; else the worker's sweep
        worker.heartbeat()
        locks.extend_held(worker.settings().lease_seconds)  # also outside a worker (the CLI)
        if on_page is not None:
            on_page(ctx.report)
    if record_status and not dry_run and ctx.report.stopped is None:
        store.update_meta(
            last_success_at=utcnow().isoformat(),
            timesheets_seen=seen_count(workspace_id),
            last_error=None,
            last_report={
                "timesheets": ctx.report.timesheets,
                "new_approvals": ctx.report.new_approvals,
                "withdrawals": ctx.report.withdrawals,
                "invalid": ctx.report.invalid,
                "pages": ctx.report.pages,
            },
        )
    return ctx.report


def _page_item(ctx: _Context, raw: dict[str, Any]) -> int | None:
    if "__malformed__" in raw:
        ctx.report.invalid += 1
        return None
    return _handle(ctx, raw)

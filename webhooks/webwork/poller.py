"""Finding approvals by polling WebWork (it has no "timesheet approved" webhook).

A poll lists the workspace's timesheets whose period overlaps the window (default the last
``WEBWORK_POLL_WINDOW_DAYS`` = 62 days, so a late approval of last month's sheet is found),
all statuses, 100 per page, and compares each with what it saw before
(``TrackerTimesheetSeen``: status and a hash of its rows):

  approved, not seen approved with these rows   -> a stored delivery (``timesheet.approved``)
                                                   and its job: the SAME inbox and pipeline as
                                                   a webhook
  seen approved, now not approved               -> a ``timesheet.unapproved`` delivery: the
                                                   same withdrawal as the webhook event
  approved with other rows than seen            -> a new approval: its revision replaces the
                                                   drafts
  malformed                                     -> an ``invalid`` delivery naming the reason;
                                                   the poll goes on

Exactly-once: one poll per workspace at a time (an advisory lock; a second poller returns at
once); each change gets a deterministic delivery id (``poll:<timesheet>:<n>:<rows>``) under the
deliveries' unique key; the pipeline bills by (timesheet id, content revision) under its
per-timesheet lock, so a webhook and a poll that see the same approval bill it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector import billing, db, worker
from connector.locks import LockTimeout, advisory_lock
from connector.models import (
    ConnectionStatus,
    Delivery,
    DeliveryStatus,
    Job,
    Timesheet,
    TimesheetStatus,
    TrackerTimesheetSeen,
    Workspace,
    utcnow,
)
from connector.providers.base import RetryLater
from webhooks.inbox import insert_job
from webhooks.webwork import SOURCE
from webhooks.webwork.client import (
    Forbidden,
    ReconnectRequired,
    Unavailable,
    WebWorkClient,
    WebWorkError,
)
from webhooks.webwork.connection import WAIT_RECONNECT, WAIT_TRACKER_DATA, client_for, store_for
from webhooks.webwork.events import Event, EventError, parse_event
from webhooks.webwork.normalize import normalize_timesheet
from webhooks.webwork.polls import schedule_poll
from webhooks.webwork.rates import Catalog, catalog_for

log = logging.getLogger(__name__)

POLL_HEADER = {"x-delivered-by": "webwork-poll"}
MAX_ID_LENGTH = 255


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
    drafts_created: int = 0
    holds: int = 0
    stopped: str | None = None  # why the poll ended early, in plain words
    delivery_ids: list[int] = field(default_factory=list)
    catalog: Catalog | None = None


# --- content of a WebWork timesheet ----------
def rows_hash(raw: dict[str, Any]) -> str:
    """A hash of the timesheet's rows as WebWork lists them (day, project, contract, minutes)."""
    breakdown = raw.get("daily_breakdown") or {}
    canonical = []
    if isinstance(breakdown, dict):
        for day in sorted(breakdown):
            rows = breakdown[day] if isinstance(breakdown[day], list) else []
            canonical.append(
                [
                    day,
                    sorted(
                        [
                            str(r.get("project_id")),
                            str(r.get("contract_id")),
                            str(r.get("total_minutes")),
                        ]
                        for r in rows
                        if isinstance(r, dict)
                    ),
                ]
            )
    text = json.dumps(canonical, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _member(raw: dict[str, Any]) -> dict[str, Any]:
    member = raw.get("member")
    user_id = raw.get("user_id")
    if isinstance(member, dict):
        mid = member.get("id", user_id)
        name = member.get("name") or member.get("full_name") or member.get("email")
        email = member.get("email")
    else:
        mid, name, email = user_id, member, None
    if mid is None or mid == "":
        raise EventError(422, "/member/id", "the timesheet names no member (user_id)")
    return {"id": str(mid), "name": str(name or f"Member {mid}")[:500], "email": email}


def event_timesheet(raw: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """A WebWork timesheet as the v1 event's timesheet, rows enriched from the catalog
    (billable from the project, client from its viewers). Raises EventError if malformed."""
    breakdown = raw.get("daily_breakdown")
    if not isinstance(breakdown, dict):
        raise EventError(422, "/daily_breakdown", "is missing or not an object of days")
    rows_by_day: dict[str, list[dict[str, Any]]] = {}
    for day, rows in breakdown.items():
        if not isinstance(rows, list):
            raise EventError(422, f"/daily_breakdown/{day}", "is not a list of rows")
        out = []
        for index, row in enumerate(rows):
            where = f"/daily_breakdown/{day}/{index}"
            if not isinstance(row, dict) or row.get("project_id") in (None, ""):
                raise EventError(422, f"{where}/project_id", "is missing")
            minutes = row.get("total_minutes")
            if (
                not isinstance(minutes, int)
                or isinstance(minutes, bool)
                or not 0 <= minutes <= 1440
            ):
                raise EventError(
                    422, f"{where}/total_minutes", f"{minutes!r} is not 0..1440 minutes"
                )
            pid = str(row["project_id"])
            project = catalog.projects.get(pid, {})
            enriched: dict[str, Any] = {
                "project_id": pid,
                "project_name": str(row.get("project_name") or project.get("name") or pid)[:500],
                "contract_id": None if row.get("contract_id") is None else str(row["contract_id"]),
                "total_minutes": minutes,
            }
            if project.get("billable") is not None:
                enriched["billable"] = bool(project["billable"])
            if project.get("client"):
                enriched["client"] = project["client"]
            out.append(enriched)
        rows_by_day[str(day)] = out
    timesheet = {
        "id": str(raw["id"]),
        "member": _member(raw),
        "date_from": raw.get("date_from"),
        "date_to": raw.get("date_to"),
        "status": "approved",
        "daily_breakdown": rows_by_day,
    }
    if raw.get("user_id") is not None:
        timesheet["user_id"] = str(raw["user_id"])
    if isinstance(raw.get("total_minutes"), int):
        timesheet["total_minutes"] = raw["total_minutes"]
    return timesheet


def _event_body(kind: str, tracker_ws: str, timesheet: dict[str, Any], when: datetime) -> bytes:
    return json.dumps(
        {
            "type": kind,
            "version": 1,
            "timestamp": when.isoformat().replace("+00:00", "Z"),
            "data": {"workspace_id": tracker_ws, "timesheet": timesheet},
        },
        separators=(",", ":"),
    ).encode()


def _delivery_id(timesheet_id: str, transitions: int, what: str) -> str:
    digest = hashlib.sha256(timesheet_id.encode()).hexdigest()[:32]
    return f"poll:{digest}:{transitions}:{what}"


# --- one poll ----------
@dataclass
class _Context:
    workspace_id: int
    tracker_ws: str
    auto_invoicing: bool
    catalog: Catalog
    dry_run: bool
    report: PollReport
    now: datetime
    seen_ids: set[str] = field(default_factory=set)
    on_approval: Callable[[Event, Catalog], None] | None = None


def _seen_row(s: Any, workspace_id: int, timesheet_id: str) -> TrackerTimesheetSeen | None:
    return s.scalars(
        select(TrackerTimesheetSeen).where(
            TrackerTimesheetSeen.workspace_id == workspace_id,
            TrackerTimesheetSeen.source == SOURCE,
            TrackerTimesheetSeen.timesheet_id == timesheet_id,
        )
    ).one_or_none()


def _live_row(s: Any, workspace_id: int, timesheet_id: str) -> Timesheet | None:
    return s.scalars(
        select(Timesheet).where(
            Timesheet.workspace_id == workspace_id,
            Timesheet.source == SOURCE,
            Timesheet.timesheet_id == timesheet_id,
        )
    ).one_or_none()


def _store_delivery(
    s: Any,
    ctx: _Context,
    *,
    webhook_id: str,
    body: bytes,
    event_type: str,
    timesheet_id: str,
    status: DeliveryStatus,
    error: str | None = None,
) -> tuple[int, int | None]:
    delivery = Delivery(
        workspace_id=ctx.workspace_id,
        source=SOURCE,
        webhook_id=webhook_id,
        event_type=event_type,
        event_timestamp=ctx.now,
        timesheet_id=timesheet_id,
        received_at=ctx.now,
        headers=dict(POLL_HEADER),
        body=body,
        status=status,
        error=error,
    )
    s.add(delivery)
    s.flush()
    job_id = None
    if status == DeliveryStatus.ACCEPTED:
        job_id = insert_job(s, ctx.workspace_id, "process_delivery", delivery.id, via="poll")
    return delivery.id, job_id


def _record(
    ctx: _Context,
    raw: dict[str, Any],
    *,
    timesheet_id: str,
    status: str,
    digest: str | None,
    change: str | None,
    body: bytes | None = None,
    error: str | None = None,
) -> int | None:
    """Update what was seen and, for a change, store its delivery + job: one transaction.

    Returns the job id to nudge. A concurrent writer of the same change (another poller, a
    webhook's fill) makes the unique keys refuse the second: it is skipped, never doubled.
    """
    if ctx.dry_run:
        return None
    job_id: int | None = None
    try:
        with db.session_scope() as s:
            seen = _seen_row(s, ctx.workspace_id, timesheet_id)
            if seen is None:
                seen = TrackerTimesheetSeen(
                    workspace_id=ctx.workspace_id,
                    source=SOURCE,
                    timesheet_id=timesheet_id,
                    status=status,
                    transitions=0,
                    first_seen_at=ctx.now,
                )
                s.add(seen)
            seen.last_seen_at = ctx.now
            if change is not None:
                seen.transitions = int(seen.transitions or 0) + 1
                event_type = (
                    "timesheet.unapproved" if change == "withdrawal" else "timesheet.approved"
                )
                delivery_status = DeliveryStatus.ACCEPTED
                if change == "invalid":
                    delivery_status = DeliveryStatus.INVALID
                elif not ctx.auto_invoicing:
                    delivery_status = DeliveryStatus.SKIPPED
                    error = "automatic invoicing is off for this workspace"
                assert body is not None
                delivery_id, job_id = _store_delivery(
                    s,
                    ctx,
                    webhook_id=_delivery_id(
                        timesheet_id, seen.transitions, (digest or change)[:16]
                    ),
                    body=body,
                    event_type=event_type,
                    timesheet_id=timesheet_id,
                    status=delivery_status,
                    error=error,
                )
                seen.last_delivery_id = delivery_id
                ctx.report.delivery_ids.append(delivery_id)
            seen.status = status
            seen.rows_hash = digest if digest is not None else seen.rows_hash
            seen.error = error if change == "invalid" else None
    except IntegrityError:
        log.info("timesheet %r was recorded concurrently; skipped here", timesheet_id)
        return None
    return job_id


def _handle(ctx: _Context, raw: dict[str, Any]) -> int | None:
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
    with db.new_session() as s:
        seen = _seen_row(s, ctx.workspace_id, timesheet_id)
        live = _live_row(s, ctx.workspace_id, timesheet_id)
        seen_status = seen.status if seen else None
        seen_hash = seen.rows_hash if seen else None
        live_approved = live is not None and live.status == TimesheetStatus.APPROVED
        live_revision = (live.summary or {}).get("content_revision") if live else None

    if status != "approved":
        if seen_status == "approved" or (seen is None and live_approved):
            ctx.report.withdrawals += 1
            body = _event_body(
                "timesheet.unapproved", ctx.tracker_ws, {"id": timesheet_id}, ctx.now
            )
            return _record(
                ctx,
                raw,
                timesheet_id=timesheet_id,
                status=status or "unknown",
                digest=None,
                change="withdrawal",
                body=body,
            )
        if seen is not None and seen_status != status:
            _record(ctx, raw, timesheet_id=timesheet_id, status=status, digest=None, change=None)
        return None

    ctx.report.approved += 1
    digest = rows_hash(raw)
    if seen_status == "approved" and seen_hash == digest:
        return None  # nothing new since the last poll
    try:
        if len(timesheet_id) > MAX_ID_LENGTH:
            raise EventError(422, "/id", f"is longer than {MAX_ID_LENGTH} characters")
        timesheet = event_timesheet(raw, ctx.catalog)
        body = _event_body("timesheet.approved", ctx.tracker_ws, timesheet, ctx.now)
        event = parse_event(body)  # the same contract a webhook must meet
        content_revision = billing.timesheet_revision(normalize_timesheet(event.timesheet))
    except (EventError, KeyError, TypeError, ValueError) as exc:
        ctx.report.invalid += 1
        reason = f"WebWork timesheet {timesheet_id[:80]} cannot be billed: {exc}"
        if seen is not None and seen.error == reason:
            return None
        body = json.dumps({"webwork_timesheet": raw}, default=str).encode()
        return _record(
            ctx,
            raw,
            timesheet_id=timesheet_id[:MAX_ID_LENGTH],
            status="invalid",
            digest=digest,
            change="invalid",
            body=body,
            error=reason,
        )
    if seen is None and live_approved and live_revision == content_revision:
        # A webhook already brought exactly this approval in: remember it, bill nothing.
        _record(ctx, raw, timesheet_id=timesheet_id, status="approved", digest=digest, change=None)
        return None
    ctx.report.new_approvals += 1
    if ctx.on_approval is not None:
        ctx.on_approval(event, ctx.catalog)
    return _record(
        ctx,
        raw,
        timesheet_id=timesheet_id,
        status="approved",
        digest=digest,
        change="approval",
        body=body,
    )


def _still_connected(workspace_id: int) -> bool:
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

    Raises PollBusy (another poll runs), WebWorkError (the client's classified failures) and
    Disconnected (connection removed mid-poll, after what was already recorded).
    """
    lease = worker.settings().lease_seconds  # JOB_LEASE_SECONDS, as the jobs' leases
    try:
        with advisory_lock(f"webwork-poll:{workspace_id}", ttl=lease, timeout=0.0):
            return _poll_locked(
                workspace_id,
                date_from=date_from,
                date_to=date_to,
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


def _poll_locked(
    workspace_id: int,
    *,
    date_from: date | None,
    date_to: date | None,
    status: str | None,
    dry_run: bool,
    client: WebWorkClient | None,
    on_page: Callable[[PollReport], None] | None,
    on_approval: Callable[[Event, Catalog], None] | None,
    record_status: bool,
    refresh_catalog: bool = False,
) -> PollReport:
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        if workspace is None:
            raise Disconnected("the workspace no longer exists")
        tracker_ws = workspace.tracker_workspace_id
        auto_invoicing = bool(workspace.auto_invoicing)
    client = client or client_for(workspace_id)
    today = utcnow().date()
    window = int(_config("WEBWORK_POLL_WINDOW_DAYS", 62))
    date_to = date_to or today
    date_from = date_from or (today - timedelta(days=window))
    started = utcnow()
    store = store_for(workspace_id)
    if record_status and not dry_run:
        store.update_meta(last_poll_at=started.isoformat())
    ctx = _Context(
        workspace_id=workspace_id,
        tracker_ws=tracker_ws,
        auto_invoicing=auto_invoicing,
        catalog=catalog_for(workspace_id, client, force=refresh_catalog, persist=not dry_run),
        dry_run=dry_run,
        report=PollReport(),
        now=started,
        on_approval=on_approval,
    )
    ctx.report.catalog = ctx.catalog
    for page in client.timesheet_pages(
        tracker_ws, date_from=date_from, date_to=date_to, status=status
    ):
        if not dry_run and not _still_connected(workspace_id):
            ctx.report.stopped = "the WebWork connection was removed during the poll"
            break
        ctx.report.pages += 1
        jobs: list[int] = []
        for raw in page.items:
            if "__malformed__" in raw:
                ctx.report.invalid += 1
                continue
            job_id = _handle(ctx, raw)
            if job_id is not None:
                jobs.append(job_id)
        # Page by page, so a fault on a later page delays nothing already recorded.
        for job_id in jobs:
            worker.job_committed(job_id)  # inline in immediate mode; else the worker's sweep
        worker.heartbeat()
        if on_page is not None:
            on_page(ctx.report)
    if record_status and not dry_run and ctx.report.stopped is None:
        with db.new_session() as s:
            seen_count = (
                s.query(TrackerTimesheetSeen)
                .filter_by(workspace_id=workspace_id, source=SOURCE)
                .count()
            )
        store.update_meta(
            last_success_at=utcnow().isoformat(),
            timesheets_seen=seen_count,
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


# --- the periodic job ----------
def poll_job(job: Job, config: Mapping[str, Any]) -> None:
    """The outbox job: poll, record the outcome in plain words, schedule the next poll.

    A failed poll is not retried on its own schedule: the next periodic poll is the retry
    (after at least WebWork's Retry-After), so polling never ends because WebWork was down.
    """
    workspace_id = job.workspace_id
    store = store_for(workspace_id)
    delay: float | None = None
    try:
        poll_workspace(workspace_id)
    except PollBusy:
        pass
    except Disconnected:
        return
    except (ReconnectRequired, Forbidden) as exc:
        row = store.connection()
        if row is None or row.status == ConnectionStatus.DISCONNECTED:
            return  # removed: nothing to wait for
        store.mark_reconnect_needed(exc.message)
        store.update_meta(last_error=exc.message)
        raise worker.WaitFor(WAIT_RECONNECT, exc.message) from None
    except Unavailable as exc:
        store.update_meta(last_error=exc.message)
        if exc.retry_after:
            every = config.get("WEBWORK_POLL_SECONDS")
            delay = max(float(300 if every in (None, "") else every), exc.retry_after)
    except WebWorkError as exc:
        store.update_meta(last_error=exc.message)
    if _still_connected(workspace_id):
        schedule_poll(workspace_id, delay_seconds=delay)


# --- thin webhook events: fetch the rows ----------
def fill_event(workspace_id: int, event: Event) -> Event | None:
    """The approval's rows read from WebWork (same enrichment as a poll, so the same content
    revision: a webhook and a poll of one approval bill it once). None when WebWork is not
    connected, or when it does not show a full event's timesheet as approved (the event is
    then used as sent; the next poll withdraws it if WebWork took the approval back)."""
    row = store_for(workspace_id).connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return None
    try:
        client = client_for(workspace_id)
        catalog = catalog_for(workspace_id, client)
        with db.new_session() as s:
            workspace = s.get(Workspace, workspace_id)
            assert workspace is not None
            tracker_ws = workspace.tracker_workspace_id
        raw = client.get_timesheet(tracker_ws, event.timesheet_id)
    except (ReconnectRequired, Forbidden) as exc:
        raise worker.WaitFor(WAIT_RECONNECT, f"Reconnect WebWork: {exc.message}") from None
    except Unavailable as exc:
        raise RetryLater(exc.message, retry_after=exc.retry_after) from None
    except WebWorkError as exc:
        raise RetryLater(f"WebWork could not be read: {exc.message}") from None
    if raw is None or str(raw.get("status") or "").lower() != "approved":
        if not event.is_thin:
            return None
        state = "not found" if raw is None else f"status {raw.get('status')!r}"
        raise worker.WaitFor(
            WAIT_TRACKER_DATA,
            f"WebWork does not show timesheet {event.timesheet_id[:80]} as approved ({state}); "
            "the approval waits for the next poll.",
        )
    timesheet = event_timesheet(raw, catalog)
    # Remember it as seen, so the next poll does not deliver the same approval again.
    ctx = _Context(workspace_id, tracker_ws, True, catalog, False, PollReport(), utcnow())
    _record(
        ctx,
        raw,
        timesheet_id=event.timesheet_id,
        status="approved",
        digest=rows_hash(raw),
        change=None,
    )
    return Event(
        type=event.type,
        timestamp=event.timestamp,
        workspace_id=event.workspace_id,
        timesheet=timesheet,
    )

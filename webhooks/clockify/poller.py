"""The reconciling poll: approvals whose webhook was lost, and withdrawals, found by listing.

One pass lists the workspace's approval requests updated within ``CLOCKIFY_POLL_WINDOW_DAYS``
(most recently updated first, so a pass stops at the window's edge), APPROVED ones with their
entries and then those taken back (WITHDRAWN_APPROVAL) or sent back for approval (PENDING):

  approved, not seen approved with these rows  -> a stored approval delivery carrying the rows
                                                  (the same inbox, job and pipeline as a webhook)
  seen approved (or billed), now not approved  -> a withdrawal delivery
  already billed by a webhook with these rows  -> remembered, nothing stored

Exactly once: one poll per workspace at a time (an advisory lock), deterministic delivery ids,
and the pipeline bills by (request id, content revision): a webhook and a poll of one approval
bill it once. Clockify's requests are spaced by the per-workspace limiter the client shares with
every process; a 429 pauses the whole workspace for its Retry-After.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from connector import billing, db, locks, trackers, worker
from connector.locks import LockTimeout, advisory_lock
from connector.models import Workspace, utcnow
from webhooks.clockify import catalog
from webhooks.clockify.client import (
    ClockifyClient,
    Forbidden,
    ReconnectRequired,
    TrackerError,
    Unavailable,
)
from webhooks.clockify.connection import client_for, store_for
from webhooks.clockify.events import EventError, parse_event
from webhooks.clockify.fill import item_entries
from webhooks.clockify.health import reconnect_words
from webhooks.clockify.memory import APPROVED, Change, record, rows_hash, what_was_seen
from webhooks.clockify.normalize import normalize_timesheet
from webhooks.clockify.timesheets import EntryError, build_timesheet, parse_instant

log = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 62
TAKEN_BACK = ("WITHDRAWN_APPROVAL", "PENDING")


@dataclass
class PollReport:
    approved: int = 0
    new_approvals: int = 0
    withdrawals: int = 0
    invalid: int = 0
    pages: int = 0
    catalog_entities: int | None = None  # clients and projects read for the mapping page
    jobs: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Pass:
    workspace_id: int
    client: ClockifyClient
    auto_invoicing: bool
    since: datetime
    now: datetime
    report: PollReport

    def store(self, request_id: str, status: str, digest: str | None, change: Change) -> None:
        _, job = record(
            self.workspace_id,
            request_id,
            status=status,
            digest=digest,
            now=self.now,
            change=change,
            auto_invoicing=self.auto_invoicing,
        )
        if job is not None:
            self.report.jobs.append(job)


def _updated_at(request: dict[str, Any]) -> datetime:
    return parse_instant((request.get("status") or {}).get("updatedAt"), "status/updatedAt")


def _items(ctx: _Pass, state: str) -> Any:
    """The window's requests in ``state``, most recently updated first."""
    for page in ctx.client.approval_request_pages(state):
        ctx.report.pages += 1
        for item in page:
            request = item.get("approvalRequest")
            if not isinstance(request, dict) or not request.get("id"):
                ctx.report.invalid += 1
                continue
            try:
                if _updated_at(request) < ctx.since:
                    return  # older than the window: so is everything after it
            except EntryError:
                ctx.report.invalid += 1
                continue
            yield item, request
        locks.extend_held(worker.settings().lease_seconds)
        worker.heartbeat()


def _approval(ctx: _Pass, item: dict[str, Any], request: dict[str, Any]) -> None:
    request_id = str(request["id"])
    ctx.report.approved += 1
    try:
        timesheet = build_timesheet(request, item_entries(ctx.client, item))
        body = json.dumps({**request, "timesheet": timesheet}).encode()
        event = parse_event(body)  # the same contract a webhook must meet
        revision = billing.timesheet_revision(normalize_timesheet(event.timesheet))
    except (EntryError, EventError, KeyError, TypeError, ValueError) as exc:
        _invalid(
            ctx, request, f"Clockify approval request {request_id[:80]} cannot be billed: {exc}"
        )
        return
    digest = rows_hash(timesheet)
    seen = what_was_seen(ctx.workspace_id, request_id)
    if seen.status == APPROVED and seen.rows_hash == digest:
        return  # nothing new since the last pass
    if seen.live_approved and seen.live_revision == revision:
        # A webhook already brought exactly this approval in: remember it, bill nothing.
        record(ctx.workspace_id, request_id, status=APPROVED, digest=digest, now=ctx.now)
        return
    ctx.report.new_approvals += 1
    ctx.store(request_id, APPROVED, digest, Change("approval", body))


def _invalid(ctx: _Pass, request: dict[str, Any], reason: str) -> None:
    """Shown, not billed: an ``invalid`` delivery naming the reason (once per reason)."""
    request_id = str(request["id"])
    ctx.report.invalid += 1
    ctx.report.problems.append(reason)
    log.warning("%s", reason)
    if what_was_seen(ctx.workspace_id, request_id).error == reason:
        return
    body = json.dumps({"clockify_approval_request": request}).encode()
    ctx.store(request_id, "invalid", None, Change("invalid", body, reason))


def _withdrawal(ctx: _Pass, request: dict[str, Any]) -> None:
    request_id = str(request["id"])
    seen = what_was_seen(ctx.workspace_id, request_id)
    if not (seen.status == APPROVED or (not seen.known and seen.live_approved)):
        # Never approved here, or its withdrawal is stored already (perhaps not yet processed).
        return
    state = str((request.get("status") or {}).get("state"))
    # Read as a withdrawal whatever the state: sent back for approval means not approved now.
    status = {**request["status"], "state": "WITHDRAWN_APPROVAL"}
    body = json.dumps({**request, "status": status}).encode()
    ctx.report.withdrawals += 1
    ctx.store(request_id, state.lower(), None, Change("withdrawal", body))


def poll_workspace(
    workspace_id: int, *, client: ClockifyClient | None = None, refresh: bool = False
) -> PollReport:
    """One pass; raises trackers.PollBusy, and the client's errors (TrackerError)."""
    lease = worker.settings().lease_seconds
    try:
        with advisory_lock(f"clockify-poll:{workspace_id}", ttl=lease, timeout=0.0, keepalive=True):
            return _poll_locked(workspace_id, client or client_for(workspace_id), refresh)
    except LockTimeout:
        raise trackers.PollBusy("another poll of this workspace is running") from None


def _poll_locked(workspace_id: int, client: ClockifyClient, refresh: bool) -> PollReport:
    store = store_for(workspace_id)
    store.update_meta(last_poll_at=utcnow().isoformat())
    catalog_entities = (
        catalog.sync(workspace_id, client) if catalog.due(workspace_id, force=refresh) else None
    )
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        auto_invoicing = bool(workspace and workspace.auto_invoicing)
    days = int(current_app.config.get("CLOCKIFY_POLL_WINDOW_DAYS") or DEFAULT_WINDOW_DAYS)
    now = utcnow()
    ctx = _Pass(workspace_id, client, auto_invoicing, now - timedelta(days=days), now, PollReport())
    ctx.report.catalog_entities = catalog_entities
    for item, request in _items(ctx, "APPROVED"):
        _approval(ctx, item, request)
    for state in TAKEN_BACK:
        for _, request in _items(ctx, state):
            _withdrawal(ctx, request)
    for job_id in ctx.report.jobs:
        worker.job_committed(job_id)  # inline in immediate mode; else the worker's sweep
    store.update_meta(
        last_success_at=utcnow().isoformat(),
        last_error=None,
        last_report={
            "approved": ctx.report.approved,
            "new_approvals": ctx.report.new_approvals,
            "withdrawals": ctx.report.withdrawals,
            "invalid": ctx.report.invalid,
        },
    )
    return ctx.report


def poll(workspace_id: int, config: Mapping[str, Any], refresh: bool) -> str:
    """The shared poll machinery's entry (``trackers.Poller.poll``): one pass, in plain words;
    Clockify's refusals and faults become ``PollProblem`` (held, or retried after Retry-After)."""
    try:
        report = poll_workspace(workspace_id, refresh=refresh)
    except (ReconnectRequired, Forbidden) as exc:
        raise trackers.PollProblem(reconnect_words(exc.message), refused=True) from None
    except Unavailable as exc:
        raise trackers.PollProblem(exc.message, retry_after=exc.retry_after) from None
    except TrackerError as exc:
        raise trackers.PollProblem(exc.message) from None
    said = (
        f"{report.approved} approved request(s) listed: {report.new_approvals} new "
        f"approval(s), {report.withdrawals} withdrawal(s)"
    )
    if report.catalog_entities is not None:
        said += f"; {report.catalog_entities} client(s) and project(s) read for the mapping page"
    if report.invalid:
        said += f", {report.invalid} unreadable ({'; '.join(report.problems)[:300]})"
    return said + "."

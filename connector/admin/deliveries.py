"""The deliveries log: every stored event with its raw body, and replaying one after a fix.

A replay is queued by a POST that redirects to the delivery's page with the replay's job id
(post/redirect/get); that page reloads itself (a meta refresh, no script) until the worker has
run the job and then says what it did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from connector import db
from connector.admin import bp
from connector.admin.words import STATUS_WORDS
from connector.approval_queries import HELD_STATUSES, count, find_timesheet, live_drafts
from connector.auth import admin_required, workspace_for_admin
from connector.models import Delivery, DeliveryStatus, DraftStatus, Job, JobState, Workspace
from connector.security import bounded_int_arg
from connector.validation import JsonError, parse_json, record_id_or_none
from webhooks.inbox import replay_delivery

PAGE_SIZE = 50


@bp.route("/workspaces/<int:workspace_id>/deliveries")
@admin_required
def deliveries(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    status = request.args.get("status", "")
    stmt = select(Delivery).where(Delivery.workspace_id == ws.id)
    if status in {s.value for s in DeliveryStatus}:
        stmt = stmt.where(Delivery.status == status)
    else:
        status = ""
    page = bounded_int_arg(request.args.get("page"), 1)
    total = count(db.session, stmt)
    pages = max(1, -(-total // PAGE_SIZE))
    rows = list(
        db.session.scalars(
            stmt.order_by(Delivery.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
        )
    )

    def page_url(number: int) -> str:
        args = {"status": status, "page": number if number > 1 else None}
        return url_for(
            "admin.deliveries", workspace_id=ws.id, **{k: v for k, v in args.items() if v}
        )

    return render_template(
        "admin/deliveries.html",
        workspace=ws,
        deliveries=rows,
        status=status,
        statuses=[s.value for s in DeliveryStatus],
        page=page,
        pages=pages,
        total=total,
        page_url=page_url,
        has_more=page < pages,
    )


def pretty_body(body: bytes) -> str:
    """Indented JSON when the raw body parses; otherwise the bytes as text (kept for audit)."""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.dumps(parse_json(text), indent=2, ensure_ascii=False)
    except JsonError:  # not JSON, or nested too deep to indent (stored as it came)
        return text


@bp.route("/workspaces/<int:workspace_id>/deliveries/<int:delivery_id>")
@admin_required
def delivery(workspace_id: int, delivery_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    row = db.session.get(Delivery, delivery_id)
    if row is None or row.workspace_id != ws.id:
        abort(404)
    timesheet = None
    if row.timesheet_id:
        timesheet = find_timesheet(db.session, ws.id, row.timesheet_id)
    replay_job = _replay_job(ws, row, request.args.get("replay"))
    return render_template(
        "admin/delivery.html",
        workspace=ws,
        delivery=row,
        body=pretty_body(row.body or b""),
        timesheet=timesheet,
        event_type=shown_event_type(row),
        replayable=row.status != DeliveryStatus.INVALID,
        replay=replay_state(ws, replay_job, row) if replay_job else None,
        refresh_seconds=REPLAY_REFRESH_SECONDS,
    )


# How often the delivery page reloads itself (a meta refresh: no script) while a replay waits.
REPLAY_REFRESH_SECONDS = 2


def _replay_job(ws: Workspace, row: Delivery, job_arg: str | None) -> Job | None:
    """The replay job the page was redirected with, if it is this delivery's."""
    job_id = record_id_or_none(job_arg)
    job = db.session.get(Job, job_id) if job_id else None
    if job is None or job.workspace_id != ws.id or job.delivery_id != row.id:
        return None
    return job


def shown_event_type(row: Delivery) -> str | None:
    """The event's type: as parsed, else as the body names it when the event was malformed but
    its ``type`` was still readable (so the page does not say "unknown" for a known type)."""
    if row.event_type:
        return row.event_type
    try:
        body = parse_json((row.body or b"").decode("utf-8", errors="replace"))
    except JsonError:
        return None
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) and 0 < len(kind) <= EVENT_TYPE_MAX else None


EVENT_TYPE_MAX = 100  # a longer "type" is not a type a sender meant; say "unknown"


@bp.route("/workspaces/<int:workspace_id>/deliveries/<int:delivery_id>/replay", methods=["POST"])
@admin_required
def replay(workspace_id: int, delivery_id: int) -> Any:
    """Queue the replay, then show its state on the delivery page (post/redirect/get): the page
    reloads itself until the worker has run it, and then says what it did."""
    ws = workspace_for_admin(workspace_id)
    row = db.session.get(Delivery, delivery_id)
    if row is None or row.workspace_id != ws.id:
        abort(404)
    here = url_for("admin.delivery", workspace_id=ws.id, delivery_id=row.id)
    if row.status == DeliveryStatus.INVALID:
        flash(
            "This delivery cannot be replayed: it was not a valid event, so it would be refused "
            "again. Send a corrected event instead.",
            "error",
        )
        return redirect(here, 303)
    job_id = replay_delivery(ws.id, row.id)
    if job_id is None:
        flash("This delivery cannot be replayed (it was not a valid event).", "error")
        return redirect(here, 303)
    return redirect(
        url_for("admin.delivery", workspace_id=ws.id, delivery_id=row.id, replay=job_id), 303
    )


@dataclass(frozen=True)
class ReplayState:
    done: bool
    ok: bool
    message: str


def replay_state(ws: Workspace, job: Job, row: Delivery) -> ReplayState:
    done = job.state not in (JobState.PENDING, JobState.RUNNING)
    message = replay_outcome(ws, job, row)
    return ReplayState(done=done, ok=job.state != JobState.FAILED, message=message)


def replay_outcome(ws: Workspace, job: Job | None, delivery: Delivery | None) -> str:
    """What a replay did, in one sentence: its drafts once it ran, else that it is queued."""
    if job is None or delivery is None:
        return "Replay queued."
    if job.state in (JobState.PENDING, JobState.RUNNING):
        return (
            f"Replay of delivery #{delivery.id} queued; this page reloads itself and shows its "
            "outcome once the worker has run it."
        )
    if job.state == JobState.FAILED:
        return f"The replay of delivery #{delivery.id} could not be processed: {job.last_error}"
    ts = find_timesheet(db.session, ws.id, delivery.timesheet_id) if delivery.timesheet_id else None
    if ts is None:
        return f"Replayed delivery #{delivery.id}: {STATUS_WORDS.get(delivery.status, '')}."
    drafts = live_drafts(ts)
    drafted = sum(1 for d in drafts if d.status == DraftStatus.DRAFTED)
    held = sum(1 for d in drafts if d.status in HELD_STATUSES)
    return (
        f"Replayed delivery #{delivery.id}: the approval now has {drafted} drafted and "
        f"{held} held draft(s); drafts created before were recognised, not duplicated."
    )

"""Approvals and their drafts, every hold in plain words with the button that fixes it (the
deliveries log is ``deliveries``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from connector import db
from connector.admin import bp, onboarding
from connector.admin.onboarding import AccountingState
from connector.admin.words import STATUS_WORDS
from connector.approval_queries import (
    HELD_STATUSES,
    approvals_query,
    count,
    earlier_drafts,
    live_drafts,
    rebilling_timesheets,
)
from connector.auth import admin_required, workspace_for_admin
from connector.models import (
    HOLD_STATUSES,
    Delivery,
    Draft,
    DraftStatus,
    Timesheet,
    TrackerEntity,
    Workspace,
)
from connector.pipeline import RebillRefused, is_live, request_rebill, retry_timesheet
from connector.providers import DISPLAY_NAMES
from connector.security import bounded_int_arg

log = logging.getLogger(__name__)

PAGE_SIZE = 50
# The status filter: "held" groups everything an admin can unblock, then each status by name.
STATUS_FILTERS = {
    "": "Any status",
    "held": "Held (needs a mapping, rate or reconnect)",
    **{s.value: STATUS_WORDS.get(s.value, s.value) for s in DraftStatus},
}

HOLD_WORDS = {
    DraftStatus.NEEDS_MAPPING: "Not invoiced yet: this work is not mapped to a customer in the "
    "accounting system.",
    DraftStatus.NEEDS_RATE: "Not invoiced yet: no hourly rate applies to some of these hours.",
    DraftStatus.CURRENCY_MISMATCH: "Not invoiced yet: the rate's currency differs from the "
    "customer's currency.",
    DraftStatus.RECONNECT_NEEDED: "Waiting: the accounting connection must be reconnected; the "
    "draft is created as soon as it is.",
    DraftStatus.FAILED: "The accounting system refused this draft.",
    DraftStatus.NEEDS_ATTENTION: "The approval was withdrawn but finance already sent this "
    "invoice: void or credit it by hand.",
    DraftStatus.PENDING: "Being created in the accounting system.",
    DraftStatus.VOIDED: "Removed: the approval was withdrawn.",
}


# Held because nothing is connected yet, when the workspace's accounting was never connected.
CONNECT_FIRST_STATUSES = (DraftStatus.NEEDS_MAPPING, DraftStatus.RECONNECT_NEEDED)


@dataclass(frozen=True)
class Fix:
    label: str
    url: str
    method: str = "get"  # "post" buttons carry a CSRF token


def _entity_names(ws: Workspace) -> dict[tuple[str, str], str]:
    return {
        (e.kind, e.tracker_id): e.name
        for e in db.session.scalars(
            select(TrackerEntity).where(TrackerEntity.workspace_id == ws.id)
        )
    }


@dataclass(frozen=True)
class HeldIds:
    """The tracker projects and clients one held draft is about (what its fixes name)."""

    project_ids: tuple[str, ...]
    client_ids: tuple[str, ...]


def _holds_by_subject(drafts: list[Draft]) -> dict[str, list[HeldIds]]:
    """What each held draft is about, as planning recorded it: no billing run per page view.
    Rows held before the ids were kept fall back to the rows they cover."""
    holds: dict[str, list[HeldIds]] = {}
    for d in drafts:
        if d.status not in HOLD_STATUSES:
            continue
        if d.hold_subjects is not None:
            projects = d.hold_subjects.get("project_ids") or []
            clients = d.hold_subjects.get("client_ids") or []
        else:
            projects = [str(pair[0]) for pair in d.covers or [] if pair and pair[0]]
            clients = [str(pair[1]) for pair in d.covers or [] if len(pair) > 1 and pair[1]]
        held = HeldIds(tuple(dict.fromkeys(projects)), tuple(dict.fromkeys(clients)))
        holds.setdefault(d.subject_key, []).append(held)
    return holds


def fixes_for(
    ws: Workspace,
    ts: Timesheet,
    draft: Draft,
    holds: list[Any],
    names: dict[tuple[str, str], str],
    *,
    back: str | None = None,
) -> list[Fix]:
    """The buttons that unblock one draft, most direct first. ``back`` (the approval page) is
    carried to the fix's page, which returns there once the fix is saved."""
    status = draft.status
    extra = {"back": back} if back else {}
    if (
        status in CONNECT_FIRST_STATUSES
        and onboarding.accounting_state(ws) == AccountingState.NOT_CONNECTED
    ):
        name = DISPLAY_NAMES.get(ws.provider, ws.provider)
        return [Fix(f"Connect {name}", url_for("admin.connections", workspace_id=ws.id, **extra))]
    if status == DraftStatus.NEEDS_MAPPING:
        return _mapping_fixes(ws, draft, holds, names, extra)
    if status == DraftStatus.NEEDS_RATE:
        return _rate_fixes(ws, ts, draft, holds, names, extra)
    if status == DraftStatus.CURRENCY_MISMATCH:
        return [
            Fix("Review the rates", url_for("mappings.rates", workspace_id=ws.id)),
            Fix("Map to another customer", url_for("mappings.index", workspace_id=ws.id)),
        ]
    if status == DraftStatus.RECONNECT_NEEDED:
        return [Fix("Reconnect", url_for("admin.connections", workspace_id=ws.id, **extra))]
    if status == DraftStatus.FAILED:
        return [
            Fix(
                "Retry",
                url_for("admin.retry_approval", workspace_id=ws.id, timesheet_pk=ts.id),
                method="post",
            )
        ]
    return []


def _mapping_fixes(
    ws: Workspace,
    draft: Draft,
    holds: list[Any],
    names: dict[tuple[str, str], str],
    extra: dict[str, str],
) -> list[Fix]:
    """One "map ... to a customer" button per project and client the hold names."""
    projects: list[str] = []
    clients: list[str] = []
    for hold in holds:
        projects += hold.project_ids
        clients += hold.client_ids
    if not projects and draft.subject_key.startswith("project:"):
        projects.append(draft.subject_key.split(":", 1)[1])
    subjects = [("project", pid) for pid in dict.fromkeys(projects)]
    subjects += [("client", cid) for cid in dict.fromkeys(clients)]
    return [
        Fix(
            f"Map {kind} {names.get((kind, tracker_id), tracker_id)} to a customer",
            url_for("mappings.edit", workspace_id=ws.id, kind=kind, tracker_id=tracker_id, **extra),
        )
        for kind, tracker_id in subjects
    ]


def _rate_fixes(
    ws: Workspace,
    ts: Timesheet,
    draft: Draft,
    holds: list[Any],
    names: dict[tuple[str, str], str],
    extra: dict[str, str],
) -> list[Fix]:
    """One "add a rate" button per held project of the member, else one for the customer."""
    member = ts.member or {}
    member_id = str(member.get("id") or "")
    member_name = member.get("name") or member_id
    project_ids = [pid for hold in holds for pid in hold.project_ids]
    fixes = [
        Fix(
            f"Add a rate for {member_name} on {names.get(('project', pid), pid)}",
            url_for(
                "mappings.rates",
                workspace_id=ws.id,
                member_id=member_id,
                project_id=pid,
                currency=draft.currency or "",
                _anchor="add-rate",
                **extra,
            ),
        )
        for pid in dict.fromkeys(project_ids)
    ]
    return fixes or [
        Fix(
            "Add a rate",
            url_for(
                "mappings.rates",
                workspace_id=ws.id,
                customer_id=draft.customer_id or "",
                currency=draft.currency or "",
                _anchor="add-rate",
                **extra,
            ),
        )
    ]


def _parse_day(name: str, errors: dict[str, str]) -> date | None:
    """The filter's day; a value that is no date is named at its field (``errors``) and the
    list is shown without it, saying so."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        shown = raw if len(raw) <= 20 else raw[:20] + "…"
        errors[name] = f"{shown!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-16. Not applied."
        return None


def _view_rows(ws: Workspace, timesheets: list[Timesheet]) -> list[dict[str, Any]]:
    names = _entity_names(ws)
    rebilling = rebilling_timesheets(db.session, ws.id)
    not_connected = onboarding.accounting_state(ws) == AccountingState.NOT_CONNECTED
    rows = []
    for ts in timesheets:
        drafts = live_drafts(ts)
        needs_rebill = any(d.status in HOLD_STATUSES for d in drafts)
        holds = _holds_by_subject(drafts) if needs_rebill else {}
        back = url_for("admin.approval", workspace_id=ws.id, timesheet_pk=ts.id)
        items = []
        for d in drafts:
            # A queued re-bill replaces the held draft: its hold text is stale, say so instead.
            busy = ts.id in rebilling and d.status in HELD_STATUSES
            words = HOLD_WORDS.get(DraftStatus(d.status)) if d.status else None
            shown = d.status
            if busy:
                shown, words = "rebilling", "Re-billing with your change…"
            elif not_connected and d.status in CONNECT_FIRST_STATUSES:
                # Never connected: "reconnect" or "needs mapping" would send the admin astray.
                shown, words = "connect_first", onboarding.connect_first_message(ws)
            items.append(
                {
                    "draft": d,
                    "rebilling": busy,
                    "shown_status": shown,
                    "words": words,
                    "fixes": []
                    if busy
                    else fixes_for(ws, ts, d, holds.get(d.subject_key, []), names, back=back),
                    "subject_name": _subject_name(d, names),
                }
            )
        rows.append(
            {"timesheet": ts, "drafts": items, "rebilling": any(i["rebilling"] for i in items)}
        )
    return rows


def _subject_name(draft: Draft, names: dict[tuple[str, str], str]) -> str:
    """The customer, or while unmapped the tracker project/client in words (never its key)."""
    if draft.customer_name:
        return draft.customer_name
    kind, _, tracker_id = draft.subject_key.partition(":")
    if kind not in ("project", "client"):
        return "No customer yet"
    label = names.get((kind, tracker_id), tracker_id)
    return f"No customer yet ({kind} {label})"


@bp.route("/workspaces/<int:workspace_id>/approvals")
@admin_required
def approvals(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    status = request.args.get("status", "")
    if status not in STATUS_FILTERS:
        flash("Ignored an unknown status filter.", "error")
        status = ""
    filter_errors: dict[str, str] = {}
    day_from, day_to = _parse_day("from", filter_errors), _parse_day("to", filter_errors)
    if day_from and day_to and day_from > day_to:
        filter_errors["to"] = "is before 'Period from': no period can match. Not applied."
        day_to = None
    page = bounded_int_arg(request.args.get("page"), 1)

    stmt = approvals_query(
        ws.id,
        statuses=(HELD_STATUSES if status == "held" else [status]) if status else None,
        day_from=day_from,
        day_to=day_to,
    )
    total = count(db.session, stmt)
    timesheets = list(db.session.scalars(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))

    def page_url(number: int) -> str:
        args = {"status": status, "from": day_from, "to": day_to, "page": number}
        return url_for(
            "admin.approvals", workspace_id=ws.id, **{k: v for k, v in args.items() if v}
        )

    return render_template(
        "admin/approvals.html",
        page_url=page_url,
        workspace=ws,
        rows=_view_rows(ws, timesheets),
        status=status,
        status_filters=STATUS_FILTERS,
        day_from=day_from,
        day_to=day_to,
        filter_errors=filter_errors,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
    )


def _timesheet_for(ws: Workspace, timesheet_pk: int) -> Timesheet:
    ts = db.session.get(Timesheet, timesheet_pk)
    if ts is None or ts.workspace_id != ws.id:
        abort(404)
    return ts


@bp.route("/workspaces/<int:workspace_id>/approvals/<int:timesheet_pk>")
@admin_required
def approval(workspace_id: int, timesheet_pk: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    ts = _timesheet_for(ws, timesheet_pk)
    deliveries = list(
        db.session.scalars(
            select(Delivery)
            .where(Delivery.workspace_id == ws.id, Delivery.timesheet_id == ts.timesheet_id)
            .order_by(Delivery.id.desc())
        )
    )
    names = _entity_names(ws)
    # Only drafts that reached the books were "replaced": a hold planned again once fixed made
    # no invoice, and listing it would say the timesheet changed when nothing did.
    previous = [
        (d, _subject_name(d, names)) for d in earlier_drafts(ts) if d.provider_id is not None
    ]
    return render_template(
        "admin/approval.html",
        workspace=ws,
        row=_view_rows(ws, [ts])[0],
        previous=previous,
        deliveries=deliveries,
    )


@bp.route("/workspaces/<int:workspace_id>/approvals/<int:timesheet_pk>/retry", methods=["POST"])
@admin_required
def retry_approval(workspace_id: int, timesheet_pk: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    ts = _timesheet_for(ws, timesheet_pk)

    job_id = retry_timesheet(ws.id, ts.id)
    if job_id is None:
        flash("Nothing to retry for this approval.", "error")
    else:
        flash(f"Retrying the failed drafts of this approval (job #{job_id}).", "success")
    return redirect(
        request.form.get("back")
        if (request.form.get("back") or "").startswith(f"/workspaces/{ws.id}/")
        else url_for("admin.approval", workspace_id=ws.id, timesheet_pk=ts.id)
    )


@bp.route(
    "/workspaces/<int:workspace_id>/approvals/<int:timesheet_pk>/rebill", methods=["GET", "POST"]
)
@admin_required
def rebill_approval(workspace_id: int, timesheet_pk: int) -> Any:
    """Re-bill: a confirmation page saying what follows (GET), then the job (POST)."""
    ws = workspace_for_admin(workspace_id)
    ts = _timesheet_for(ws, timesheet_pk)

    here = url_for("admin.approval", workspace_id=ws.id, timesheet_pk=ts.id)
    if request.method == "POST":
        try:
            job_id = request_rebill(ws.id, ts.id)
        except RebillRefused as exc:
            flash(str(exc), "error")
        else:
            flash(
                f"Re-billing this approval (job #{job_id}): its drafts are withdrawn first, then "
                "it is billed with the current mappings and rates.",
                "success",
            )
        return redirect(here)
    drafts = live_drafts(ts)
    return render_template(
        "admin/rebill.html",
        workspace=ws,
        ts=ts,
        created=[d for d in drafts if is_live(d)],
        others=[d for d in drafts if not is_live(d)],
        back=here,
    )

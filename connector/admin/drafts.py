"""The Drafts page: every live draft across approvals, filtered by status and customer, with
totals per currency; and the small JSON status endpoint the console's script polls while held
drafts are being re-billed (the pages work without it)."""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, render_template, request, url_for

from connector import db
from connector.admin import bp
from connector.admin.words import STATUS_WORDS
from connector.approval_queries import (
    HELD_STATUSES,
    count_rows,
    draft_customers,
    live_drafts_query,
    rebilling_timesheets,
    totals_by_currency,
)
from connector.auth import admin_required, workspace_for_admin
from connector.models import Draft, DraftStatus, Timesheet
from connector.problems import Problem
from connector.providers.base import ProviderStatus
from connector.security import bounded_int_arg
from connector.validation import FieldError, record_id

PAGE_SIZE = 50
DRAFT_STATUS_FILTERS = {
    "": "Any status",
    "held": "Held (needs a customer, a rate or a connection)",
    **{
        s.value: STATUS_WORDS.get(s.value, s.value)
        for s in DraftStatus
        if s != DraftStatus.SUPERSEDED
    },
}


# Where the invoice stands at the provider (status sync): what finance did with it.
PROVIDER_STATUS_FILTERS = {
    "": "Anywhere",
    **{s.value: s.value.replace("_", " ").capitalize() for s in ProviderStatus},
}


def status_filter(value: str) -> list[str] | None:
    if value == "held":
        return sorted(HELD_STATUSES)
    return [value] if value else None


@bp.route("/workspaces/<int:workspace_id>/drafts")
@admin_required
def drafts(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    status = request.args.get("status", "")
    if status not in DRAFT_STATUS_FILTERS:
        flash("Ignored an unknown status filter.", "error")
        status = ""
    customers = draft_customers(db.session, ws.id)
    customer = request.args.get("customer", "")
    if customer and customer not in {cid for cid, _ in customers}:
        flash("No drafts for that customer; showing all customers.", "error")
        customer = ""
    in_books = request.args.get("in_books", "")
    if in_books not in PROVIDER_STATUS_FILTERS:
        flash("Ignored an unknown filter on where invoices stand.", "error")
        in_books = ""
    page = bounded_int_arg(request.args.get("page"), 1)
    stmt = live_drafts_query(
        ws.id,
        statuses=status_filter(status),
        customer_id=customer or None,
        provider_status=in_books or None,
    )
    total = count_rows(db.session, stmt)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    rows = db.session.execute(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()

    def page_url(number: int) -> str:
        args = {
            "status": status,
            "customer": customer,
            "in_books": in_books,
            "page": number if number > 1 else None,
        }
        return url_for("admin.drafts", workspace_id=ws.id, **{k: v for k, v in args.items() if v})

    return render_template(
        "admin/drafts.html",
        workspace=ws,
        rows=rows,
        rebilling=rebilling_timesheets(db.session, ws.id),
        status=status,
        status_filters=DRAFT_STATUS_FILTERS,
        customer=customer,
        customers=customers,
        in_books=in_books,
        provider_status_filters=PROVIDER_STATUS_FILTERS,
        totals=totals_by_currency(db.session, stmt),
        total=total,
        page=page,
        pages=pages,
        page_url=page_url,
    )


@bp.route("/workspaces/<int:workspace_id>/approvals/status.json")
@admin_required
def approvals_status(workspace_id: int) -> Any:
    """``?ts=1,2``: for each approval, whether a re-bill is running and its drafts' statuses.
    The console script polls this and refreshes a section once its re-bill is done."""
    ws = workspace_for_admin(workspace_id)
    try:
        wanted = [record_id(p, "ts") for p in (request.args.get("ts") or "").split(",")[:100] if p]
    except FieldError as exc:
        raise Problem(400, "Invalid field", str(exc), type_="invalid-field", field="/ts") from None
    rebilling = rebilling_timesheets(db.session, ws.id)
    result: dict[str, Any] = {}
    for timesheet_pk in wanted:
        ts = db.session.get(Timesheet, timesheet_pk)
        if ts is None or ts.workspace_id != ws.id:
            continue
        live = [
            d for d in ts.drafts if d.revision == ts.revision and d.status != DraftStatus.SUPERSEDED
        ]
        result[str(timesheet_pk)] = {
            "rebilling": timesheet_pk in rebilling,
            "drafts": [_draft_state(d) for d in live],
        }
    response = jsonify(approvals=result)
    response.headers["Cache-Control"] = "no-store"
    return response


def _draft_state(d: Draft) -> dict[str, Any]:
    return {"id": d.id, "status": d.status, "label": STATUS_WORDS.get(d.status, d.status)}

"""The Drafts page: every invoice (one row per document at the provider, with the approvals on
it), filtered by status, customer and where it stands in the books, with totals per currency;
below it the approvals' drafts that are held (per approval: they are no invoice yet). And the
small JSON status endpoint the console's script polls while held drafts are being re-billed
(the pages work without it)."""

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
)
from connector.auth import admin_required, workspace_for_admin
from connector.invoice_queries import (
    contributions,
    count,
    invoice_customers,
    invoices_query,
    totals_by_currency,
)
from connector.models import Draft, DraftStatus, InvoiceStatus, Timesheet
from connector.problems import Problem
from connector.providers.base import ProviderStatus
from connector.security import bounded_int_arg
from connector.validation import FieldError, record_id

PAGE_SIZE = 50
INVOICE_WORDS = {
    InvoiceStatus.PENDING: "Being created",
    InvoiceStatus.DRAFTED: "Draft",
    InvoiceStatus.CLOSED: "Sent by finance",
    InvoiceStatus.VOIDED: "Removed",
}
# Held approvals are no invoice yet: they are listed per approval below the invoices.
HELD_FILTERS = {
    "held": "Held (needs a customer, a rate or a connection)",
    **{s.value: STATUS_WORDS.get(s.value, s.value) for s in sorted(HELD_STATUSES)},
}
DRAFT_STATUS_FILTERS = {
    "": "Any status",
    "needs_attention": "Needs attention",
    **{s.value: INVOICE_WORDS[s] for s in InvoiceStatus},
    **HELD_FILTERS,
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


def _filters(ws_id: int) -> tuple[str, str, str, list[tuple[str, str]]]:
    status = request.args.get("status", "")
    if status not in DRAFT_STATUS_FILTERS:
        flash("Ignored an unknown status filter.", "error")
        status = ""
    customers = sorted(
        {
            **dict(invoice_customers(db.session, ws_id)),
            **dict(draft_customers(db.session, ws_id)),
        }.items(),
        key=lambda c: c[1].lower(),
    )
    customer = request.args.get("customer", "")
    if customer and customer not in {cid for cid, _ in customers}:
        flash("No drafts for that customer; showing all customers.", "error")
        customer = ""
    in_books = request.args.get("in_books", "")
    if in_books not in PROVIDER_STATUS_FILTERS:
        flash("Ignored an unknown filter on where invoices stand.", "error")
        in_books = ""
    return status, customer, in_books, customers


@bp.route("/workspaces/<int:workspace_id>/drafts")
@admin_required
def drafts(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    status, customer, in_books, customers = _filters(ws.id)
    held_only = status in HELD_FILTERS
    stmt = invoices_query(
        ws.id,
        status=None if held_only else (status or None),
        customer_id=customer or None,
        provider_status=in_books or None,
    )
    total = 0 if held_only else count(db.session, stmt)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(bounded_int_arg(request.args.get("page"), 1), pages)
    rows = (
        []
        if held_only
        else list(db.session.scalars(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    )
    held_rows: list[Any] = []
    if (held_only or not status) and not in_books:
        held_stmt = live_drafts_query(
            ws.id,
            statuses=status_filter(status if held_only else "held"),
            customer_id=customer or None,
        )
        held_rows = db.session.execute(held_stmt.limit(PAGE_SIZE)).all()
        held_total = count_rows(db.session, held_stmt)
    else:
        held_total = 0

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
        invoices=rows,
        on_invoice=contributions(db.session, rows),
        invoice_words=INVOICE_WORDS,
        held_rows=held_rows,
        held_total=held_total,
        held_only=held_only,
        rebilling=rebilling_timesheets(db.session, ws.id),
        status=status,
        status_filters=DRAFT_STATUS_FILTERS,
        customer=customer,
        customers=customers,
        in_books=in_books,
        provider_status_filters=PROVIDER_STATUS_FILTERS,
        totals={} if held_only else totals_by_currency(db.session, stmt),
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

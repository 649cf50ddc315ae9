"""Invoices (provider documents) and the approvals on them: the read-side queries shared by the
console's Drafts page and ``GET /api/v1/invoices``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from connector import books
from connector.models import Draft, DraftStatus, Invoice, InvoiceStatus, Timesheet
from connector.pipeline.draft_status import is_live

NEEDS_ATTENTION = "needs_attention"
# The status filter: an invoice's own status, or needs_attention (a flag on any status).
INVOICE_STATUS_FILTERS = (*(s.value for s in InvoiceStatus), NEEDS_ATTENTION)


def invoices_query(
    workspace_id: int,
    *,
    status: str | None = None,
    customer_id: str | None = None,
    period: date | None = None,
    provider_status: str | None = None,
) -> Select[tuple[Invoice]]:
    """A workspace's invoices, newest period first. Without ``status``, voided ones (every
    approval on them withdrawn) are left out; ``period`` is a day the invoice's period holds."""
    stmt = select(Invoice).where(Invoice.workspace_id == workspace_id)
    if status == NEEDS_ATTENTION:
        stmt = stmt.where(Invoice.needs_attention.is_(True))
    elif status:
        stmt = stmt.where(Invoice.status == status)
    else:
        stmt = stmt.where(Invoice.status != InvoiceStatus.VOIDED)
    if customer_id:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if period is not None:
        stmt = stmt.where(Invoice.period_start <= period, Invoice.period_end >= period)
    if provider_status:
        stmt = stmt.where(Invoice.provider_status == provider_status)
    return stmt.order_by(Invoice.period_start.desc(), Invoice.customer_name, Invoice.id.desc())


def count(s: Session, stmt: Select[Any]) -> int:
    return s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def totals_by_currency(s: Session, stmt: Select[tuple[Invoice]]) -> dict[str, Decimal]:
    """Sum of the invoices' totals per currency (exact decimals)."""
    sub = stmt.order_by(None).with_only_columns(Invoice.currency, Invoice.total).subquery()
    totals: dict[str, Decimal] = {}
    for currency, total in s.execute(select(sub.c.currency, sub.c.total)):
        if currency and total is not None:
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(total))
    return dict(sorted(totals.items()))


def invoice_customers(s: Session, workspace_id: int) -> list[tuple[str, str]]:
    """(id, name) of every customer with an invoice, for the customer filter."""
    rows = s.execute(
        select(Invoice.customer_id, func.max(Invoice.customer_name))
        .where(Invoice.workspace_id == workspace_id)
        .group_by(Invoice.customer_id)
    ).all()
    return sorted(((cid, name or cid) for cid, name in rows), key=lambda r: r[1].lower())


def needing_attention(s: Session, workspace_id: int) -> int:
    return count(
        s,
        select(Invoice).where(
            Invoice.workspace_id == workspace_id, Invoice.needs_attention.is_(True)
        ),
    )


def contributions(s: Session, invoices: Iterable[Invoice]) -> dict[int, list[Draft]]:
    """invoice id -> the approvals' rows on it (those whose lines are, or may be, on it), with
    their timesheets loaded; one query for a whole page."""
    ids = [i.id for i in invoices]
    out: dict[int, list[Draft]] = {i: [] for i in ids}
    if not ids:
        return out
    for row, _ts in s.execute(
        select(Draft, Timesheet)
        .join(Timesheet, Timesheet.id == Draft.timesheet_pk)
        .where(Draft.invoice_id.in_(ids))
        .order_by(Draft.id)
    ):
        if is_live(row) or row.status == DraftStatus.NEEDS_ATTENTION:
            out[row.invoice_id].append(row)  # type: ignore[index]
    return out


def _approval(row: Draft) -> dict[str, Any]:
    ts = row.timesheet
    return {
        "draft_id": row.id,
        "timesheet_id": ts.timesheet_id,
        "member": (ts.member or {}).get("name") or (ts.member or {}).get("id"),
        "date_from": ts.date_from.isoformat() if ts.date_from else None,
        "date_to": ts.date_to.isoformat() if ts.date_to else None,
        "status": row.status,
        "minutes": row.minutes,
        "total": None if row.total is None else str(row.total),
        "key": row.key,
    }


def serialize_invoice(
    s: Session, invoice: Invoice, on_it: list[Draft], *, lines: bool = False
) -> dict[str, Any]:
    """An invoice as the API gives it; ``lines``: every line, each with the approval it came
    from (``approval``: the draft id, timesheet and member)."""
    out: dict[str, Any] = {
        "id": invoice.id,
        "mode": invoice.mode,
        "status": invoice.status,
        "needs_attention": invoice.needs_attention,
        "attention_message": invoice.attention_message,
        "customer": {"id": invoice.customer_id, "name": invoice.customer_name},
        "currency": invoice.currency,
        "total": str(invoice.total),
        "minutes": invoice.minutes,
        "period": {
            "start": invoice.period_start.isoformat(),
            "end": invoice.period_end.isoformat(),
        },
        "books": {
            "key": invoice.books,
            "name": books.describe_key(s, invoice.workspace_id, invoice.books),
        },
        "provider": invoice.provider,
        "provider_id": invoice.provider_id,
        "link": invoice.link,
        "provider_status": invoice.provider_status,
        "provider_status_at": invoice.provider_status_at.isoformat()
        if invoice.provider_status_at
        else None,
        "approvals": [_approval(r) for r in on_it],
        "created_at": invoice.created_at.isoformat(),
        "updated_at": invoice.updated_at.isoformat(),
    }
    if lines:
        out["lines"] = [
            {**line, "approval": {k: a[k] for k in ("draft_id", "timesheet_id", "member")}}
            for row in on_it
            for a in (_approval(row),)
            for line in row.lines or []
        ]
    return out

"""A planned Draft row's lines as JSON, and the row turned back into the request the provider
is asked to create (:class:`DraftInvoice`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import billing, db
from connector.models import (
    CustomerSettings,
    Draft,
    Invoice,
    InvoiceMode,
    Timesheet,
    Workspace,
)
from connector.money import format_money
from connector.pipeline.draft_status import is_live
from connector.pipeline.inputs import customer_settings
from connector.providers.base import AccountingProvider, DraftInvoice, DraftLine
from connector.settings import WorkspaceSettings


def line_to_json(line: billing.PlannedLine) -> dict[str, Any]:
    """A billed line as stored on its Draft row (and shown by the preview)."""
    return {
        "description": line.description,
        "minutes": line.minutes,
        "tracked_minutes": line.tracked_minutes,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "amount": str(line.amount),
        "service_date": line.service_date.isoformat() if line.service_date else None,
        "date_from": line.date_from.isoformat(),
        "date_to": line.date_to.isoformat(),
        "project_id": line.project_id,
        "project_name": line.project_name,
        "task_name": line.task_name,
        "rate_source": line.rate_source,
    }


def draft_line(raw: Mapping[str, Any], currency: str) -> DraftLine:
    """A stored line as the provider is asked to write it."""
    quantity = Decimal(raw["quantity"])
    unit_price = Decimal(raw["unit_price"])
    description = raw["description"]
    # Stripe has no quantity column on amount lines: say hours x rate in the words.
    rate_text = f"x {format_money(unit_price, currency)}"
    if rate_text not in description:
        description = f"{description} {rate_text}/h"
    return DraftLine(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        amount=Decimal(raw["amount"]),
        service_date=date.fromisoformat(raw["service_date"]) if raw.get("service_date") else None,
        period_start=date.fromisoformat(raw["date_from"]),
        period_end=date.fromisoformat(raw["date_to"]),
        metadata={"project_id": str(raw.get("project_id", ""))},
    )


@dataclass(frozen=True)
class Approval:
    """One approval on an invoice, as its memo and private note name it."""

    timesheet_id: str
    member: str
    date_from: date | None
    date_to: date | None

    def short(self) -> str:
        return f"{self.timesheet_id} ({self.member})" if self.member else self.timesheet_id

    def long(self) -> str:
        days = f"{self.date_from:%Y-%m-%d} to {self.date_to:%Y-%m-%d}" if self.date_from else ""
        said = ", ".join(part for part in (self.member, days) if part)
        return f"{self.timesheet_id} ({said})" if said else self.timesheet_id


@dataclass(frozen=True)
class SharedInvoice:
    """What a per_period request needs beyond its own row: the period and every approval on
    the invoice (each named once), and how much text the provider's memo and note take."""

    period_start: date
    period_end: date
    approvals: tuple[Approval, ...]
    memo_max: int | None = None
    note_max: int | None = None


def fit_listing(head: str, items: Sequence[str], tail: str, limit: int | None) -> str:
    """``head`` + as many ``items`` as fit in ``limit`` characters + "and N more" + ``tail``:
    a memo or note never runs past what the provider stores, and never cuts a name in half."""
    for shown in range(len(items), -1, -1):
        rest = len(items) - shown
        listed = ", ".join(items[:shown]) or ("" if rest else "none")
        if rest:
            listed += f"{' and' if shown else ''} {rest} more"
        text = f"{head}{listed}{tail}"
        if limit is None or len(text) <= limit:
            return text
    return f"{head}{tail}"[: limit or None]


def load_draft_invoice(
    workspace: Workspace,
    ts_row: Timesheet,
    row: Draft,
    invoice: Invoice | None = None,
    provider: AccountingProvider | None = None,
) -> DraftInvoice:
    """:func:`draft_invoice` with what it needs read fresh (committed by other workers too):
    the customer's overrides and, on a period invoice, every approval on it."""
    with db.new_session() as s:
        overrides = customer_settings(s, workspace.id, row.books, row.customer_id)
        shared = None
        if invoice is not None and invoice.mode == InvoiceMode.PER_PERIOD:
            shared = shared_invoice(s, invoice, provider, extra=row.id)
    return draft_invoice(workspace, ts_row, row, overrides, shared)


def shared_invoice(
    s: Session,
    invoice: Invoice,
    provider: AccountingProvider | None,
    *,
    extra: int | None = None,
    exclude: int | None = None,
) -> SharedInvoice:
    """The approvals on a period invoice, as committed (``extra``: a contribution about to join
    it; ``exclude``: one about to leave it)."""
    approvals = []
    for row in s.scalars(select(Draft).where(Draft.invoice_id == invoice.id).order_by(Draft.id)):
        if row.id != exclude and (is_live(row) or row.id == extra):
            ts = s.get(Timesheet, row.timesheet_pk)
            if ts is not None:
                approvals.append(
                    Approval(
                        ts.timesheet_id, (ts.member or {}).get("name", ""), ts.date_from, ts.date_to
                    )
                )
    return SharedInvoice(
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        approvals=tuple(dict.fromkeys(approvals)),
        memo_max=getattr(provider, "memo_max_chars", None),
        note_max=getattr(provider, "note_max_chars", None),
    )


def note_and_memo(
    s: Session, invoice: Invoice, provider: AccountingProvider, *, exclude: int
) -> tuple[str, str]:
    """The private note and memo of a period invoice once ``exclude`` has left it."""
    shared = shared_invoice(s, invoice, provider, exclude=exclude)
    return period_note(shared), period_memo(shared)


def period_memo(shared: SharedInvoice) -> str:
    """Shown to the customer: the period and each timesheet on it, once."""
    period = f"{shared.period_start:%Y-%m-%d} to {shared.period_end:%Y-%m-%d}"
    names = [a.short() for a in shared.approvals]
    return fit_listing(f"Hours worked {period}. Timesheets: ", names, ".", shared.memo_max)


def period_note(shared: SharedInvoice) -> str:
    """Internal: a generated draft to review, and each approval on it, once."""
    names = [a.long() for a in shared.approvals]
    return fit_listing(
        "Draft generated by timesheet-invoicer from the approved timesheets ",
        names,
        ". Review before sending.",
        shared.note_max,
    )


def draft_invoice(
    workspace: Workspace,
    ts_row: Timesheet,
    row: Draft,
    overrides: CustomerSettings | None,
    shared: SharedInvoice | None = None,
) -> DraftInvoice:
    """What the provider is asked to create (or append). Pure: it reads only its arguments, so
    the same row always gives the very same request (a retry days later must not differ:
    Stripe rejects a reused idempotency key with other parameters)."""
    settings = WorkspaceSettings.from_dict(workspace.settings)
    terms = overrides.payment_terms_days if overrides is not None else None
    tax_code = overrides.tax_code if overrides is not None and overrides.tax_code else None
    member = ts_row.member.get("name", "")
    period = f"{ts_row.date_from:%Y-%m-%d} to {ts_row.date_to:%Y-%m-%d}"
    currency = row.currency or settings.default_currency
    memo = f"Hours worked by {member}, {period}. Timesheet {ts_row.timesheet_id}."
    # The key is not in the words: a provider that needs it adds its own marker, once.
    note = (
        f"Draft generated by timesheet-invoicer from the approved timesheet "
        f"{ts_row.timesheet_id} ({member}, {period}). Review before sending."
    )
    lines = tuple(draft_line(line, currency) for line in row.lines)
    if shared is not None:
        # One invoice holds everyone's time: each line names its member (in the description
        # already), its timesheet and period; the memo and note name each approval once.
        memo, note = period_memo(shared), period_note(shared)
        lines = tuple(
            replace(
                line,
                description=f"{line.description} (timesheet {ts_row.timesheet_id})",
                metadata={
                    **line.metadata,
                    "member": member[:200],
                    "timesheet_id": ts_row.timesheet_id,
                    "period": period,
                },
            )
            for line in lines
        )
    return DraftInvoice(
        key=row.key,
        customer_id=row.customer_id or "",
        customer_name=row.customer_name or "",
        currency=currency,
        lines=lines,
        total=row.total or Decimal(0),
        memo=memo,
        private_note=note,
        period_start=ts_row.date_from or row.created_at.date(),
        period_end=ts_row.date_to or row.created_at.date(),
        # The issue date is fixed when the row is created, so a retry days later sends the
        # very same request.
        issue_date=row.created_at.astimezone(UTC).date(),
        payment_terms_days=terms if terms is not None else settings.payment_terms_days,
        tax_code=tax_code or settings.tax_code,
        metadata={
            "workspace_id": str(workspace.id),
            "timesheet_id": ts_row.timesheet_id,
            "customer_id": row.customer_id or "",
            "draft_key": row.key,
            "member": member[:200],
            "period": period,
            # per_period: the provider tags each line with its approval (QuickBooks lines have
            # no metadata of their own)
            **({"consolidated": "1"} if shared is not None else {}),
        },
    )

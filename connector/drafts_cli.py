"""``flask --app connector drafts show|invoices``: what an approval produced, and a workspace's
invoices, as the short summaries the README shows (the JSON API has every field)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import click
from flask.cli import AppGroup
from sqlalchemy import select

from connector import db
from connector.admin.words import hours_minutes, status_words
from connector.approval_queries import live_drafts
from connector.invoice_queries import INVOICE_STATUS_FILTERS, count, invoices_query
from connector.models import Draft, Invoice, Timesheet, Workspace

WIDTH = 96  # hold messages wrap here: a terminal shows them whole
drafts_cli = AppGroup("drafts", help="What approvals produced: drafts and invoices.")


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def amount(total: object, currency: str | None) -> str:
    return "-" if total is None else f"{currency or ''} {total}".strip()


def invoice_ref(draft: Draft) -> str:
    """Where finance finds it: the provider's link (its id when it gives none), or "-"."""
    invoice = draft.invoice
    link = (invoice.link if invoice else None) or draft.link
    return link or (invoice.provider_id if invoice else None) or draft.provider_id or "-"


def _timesheet(timesheet_id: str, workspace_id: int | None) -> Timesheet:
    stmt = select(Timesheet).where(Timesheet.timesheet_id == timesheet_id)
    if workspace_id is not None:
        stmt = stmt.where(Timesheet.workspace_id == workspace_id)
    found = list(db.session.scalars(stmt.order_by(Timesheet.workspace_id)))
    if not found:
        where = f" in workspace {workspace_id}" if workspace_id is not None else ""
        raise click.ClickException(f"no approval of timesheet {timesheet_id!r}{where}")
    if len(found) > 1:
        ids = ", ".join(str(ts.workspace_id) for ts in found)
        raise click.ClickException(
            f"timesheet {timesheet_id!r} is in workspaces {ids}: name one with --workspace"
        )
    return found[0]


def summary_lines(ts: Timesheet) -> list[str]:
    """One approval in words: who and when, one row per customer, what was left out."""
    member = (ts.member or {}).get("name") or (ts.member or {}).get("id") or "Unknown member"
    lines = [
        f"{member} · {ts.date_from} to {ts.date_to} · timesheet {ts.timesheet_id} "
        f"({status_words(ts.status)})"
    ]
    drafts = sorted(live_drafts(ts), key=lambda d: (d.customer_name or d.subject_key).lower())
    if not drafts:
        lines.append("No drafts (automatic invoicing off, or nothing billable).")
    else:
        rows = [("Customer", "Status", "Hours", "Amount", "Invoice")]
        rows += [
            (
                d.customer_name or "(no customer yet)",
                status_words(d.status),
                hours_minutes(d.minutes),
                amount(d.total, d.currency),
                invoice_ref(d),
            )
            for d in drafts
        ]
        lines += table(rows)
        for d in drafts:
            if d.hold_message:  # wrapped for a terminal, each hold one bullet
                lines += textwrap.wrap(
                    d.hold_message,
                    WIDTH,
                    initial_indent="- ",
                    subsequent_indent="  ",
                    break_on_hyphens=False,  # ids such as cl-globex stay whole
                    break_long_words=False,
                )
    excluded = int((ts.summary or {}).get("excluded_minutes") or 0)
    if excluded:
        lines.append(f"{hours_minutes(excluded)} non-billable left out.")
    return lines


@drafts_cli.command("show")
@click.argument("timesheet_id")
@click.option("--workspace", "workspace_id", type=int, default=None, help="When several have it.")
def drafts_show(timesheet_id: str, workspace_id: int | None) -> None:
    """The drafts one approval produced: customer, status, hours, amount, invoice and link."""
    for line in summary_lines(_timesheet(timesheet_id, workspace_id)):
        click.echo(line)


def _invoice_state(invoice: Invoice) -> str:
    """Our status, then what finance did at the provider when it is more than a draft."""
    words = [status_words(invoice.status)]
    if invoice.provider_status and invoice.provider_status != "draft":
        words.append(status_words(invoice.provider_status))
    if invoice.needs_attention:
        words.append("needs attention")
    return ", ".join(words)


@drafts_cli.command("invoices")
@click.argument("workspace_id", type=int)
@click.option(
    "--status",
    type=click.Choice(INVOICE_STATUS_FILTERS),
    default=None,
    help="Only invoices in this state (default: all but voided).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def drafts_invoices(workspace_id: int, status: str | None, limit: int) -> None:
    """A workspace's invoices, newest period first: one row per document in the books."""
    if db.session.get(Workspace, workspace_id) is None:
        raise click.ClickException(f"no workspace with id {workspace_id}")
    stmt = invoices_query(workspace_id, status=status)
    total = count(db.session, stmt)
    invoices: list[Invoice] = list(db.session.scalars(stmt.limit(limit)))
    if not invoices:
        click.echo("no invoices yet")
        return
    rows = [("Id", "Customer", "Period", "Hours", "Amount", "Status", "Invoice")]
    rows += [
        (
            str(inv.id),
            inv.customer_name or inv.customer_id,
            f"{inv.period_start} to {inv.period_end}",
            hours_minutes(inv.minutes),
            amount(inv.total, inv.currency),
            _invoice_state(inv),
            inv.link or inv.provider_id or "-",
        )
        for inv in invoices
    ]
    for line in table(rows):
        click.echo(line)
    if total > len(invoices):
        click.echo(f"{len(invoices)} of {total} shown; --limit shows more.")

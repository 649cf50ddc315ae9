"""Read-only view of one invoice in the built-in ``local`` ledger (its drafts' deep link)."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template
from sqlalchemy import select

from connector import db
from connector.admin import bp
from connector.auth import admin_required, workspace_for_admin
from connector.models import Draft, LocalInvoice


@bp.route("/workspaces/<int:workspace_id>/ledger/<int:invoice_id>")
@admin_required
def ledger_invoice(workspace_id: int, invoice_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    invoice = db.session.get(LocalInvoice, invoice_id)
    if invoice is None or invoice.workspace_id != ws.id:
        abort(404)
    draft = db.session.scalars(
        select(Draft).where(Draft.workspace_id == ws.id, Draft.key == invoice.key)
    ).first()
    return render_template("admin/ledger_invoice.html", workspace=ws, invoice=invoice, draft=draft)

"""The rates pages of the admin console: the workspace's rates, added, edited and deleted (on
the mappings blueprint, so their addresses are ``mappings.rates...``). Every change is committed
and then held approvals are re-billed, as for mappings. Customer rates of other books than the
workspace bills to now are listed apart as history, with their books' name, and stay read-only."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from connector import db
from connector.admin.mappings import back_arg, back_to, bp, changed
from connector.auth import admin_required, workspace_for_admin
from connector.models import CustomerMapping, TrackerEntity, Workspace
from mappings import rates as rate_table
from mappings import service

RATE_FIELDS = (
    "amount",
    "currency",
    "effective_from",
    "member_id",
    "project_id",
    "contract_id",
    "customer_id",
)


def _choices(ws: Workspace) -> dict[str, list[tuple[str, str]]]:
    entities = db.session.scalars(
        select(TrackerEntity)
        .where(TrackerEntity.workspace_id == ws.id)
        .order_by(TrackerEntity.name)
    )
    members, projects = [], []
    for e in entities:
        if e.kind == "member":
            members.append((e.tracker_id, e.name or e.tracker_id))
        elif e.kind == "project":
            projects.append((e.tracker_id, e.name or e.tracker_id))
    customers = {m.customer_id: m.customer_name for m in service.list_mappings(db.session, ws.id)}
    return {
        "member_id": members,
        "project_id": projects,
        "customer_id": sorted(customers.items(), key=lambda kv: kv[1].lower()),
    }


def _customer_names(ws: Workspace) -> dict[tuple[str, str], str]:
    """(books, customer id) -> the customer's name, from the mappings of every set of books."""
    rows = db.session.execute(
        select(CustomerMapping.books, CustomerMapping.customer_id, CustomerMapping.customer_name)
        .where(CustomerMapping.workspace_id == ws.id)
        .order_by(CustomerMapping.updated_at)
    )
    return {(books_key, customer_id): name for books_key, customer_id, name in rows}


def _read_only(ws: Workspace, exc: rate_table.RateOfOtherBooks) -> Any:
    """A customer rate of other books cannot change: back to the list, saying why."""
    db.session.rollback()
    flash(str(exc), "error")
    return redirect(url_for("mappings.rates", workspace_id=ws.id))


def _render_rates(
    ws: Workspace,
    form: dict[str, str],
    errors: dict[str, str],
    *,
    editing: int | None = None,
    status: int = 200,
) -> Any:
    rows = rate_table.list_rates(db.session, ws.id)
    choices = _choices(ws)
    names = {key: dict(values) for key, values in choices.items()}
    page = render_template(
        "mappings/rates.html",
        workspace=ws,
        rates=rows,
        history=rate_table.history(db.session, ws.id),
        books_names=rate_table.books_names(db.session, ws.id),
        customer_names=_customer_names(ws),
        form=form,
        errors=errors,
        editing=editing,
        choices=choices,
        names=names,
        scope_of=rate_table.scope_of,
        scope_labels=rate_table.SCOPE_LABELS,
        back=back_arg(ws),
    )
    return page, status


@bp.route("/workspaces/<int:workspace_id>/rates", methods=["GET", "POST"])
@admin_required
def rates(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    default_currency = (ws.settings or {}).get("default_currency", "USD")
    if request.method == "GET":
        # Prefilled from a hold's "add a rate" button.
        form = {name: request.args.get(name, "") for name in RATE_FIELDS}
        form["currency"] = form["currency"] or default_currency
        return _render_rates(ws, form, {})
    form = {name: request.form.get(name, "") for name in RATE_FIELDS}
    try:
        row = rate_table.create_rate(db.session, ws.id, form)
    except rate_table.RateError as exc:
        db.session.rollback()
        errors = rate_table.rate_errors(form) or {exc.field: exc.message}
        return _render_rates(ws, form, errors, status=422)
    changed(ws, f"Rate {row.amount} {row.currency} added.")
    return redirect(back_to(ws, url_for("mappings.rates", workspace_id=ws.id)))


@bp.route("/workspaces/<int:workspace_id>/rates/<int:rate_id>", methods=["GET", "POST"])
@admin_required
def edit_rate(workspace_id: int, rate_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    row = rate_table.get_rate(db.session, ws.id, rate_id)
    if row is None:
        abort(404)
    if not rate_table.applies(db.session, ws.id, row):
        return _read_only(ws, rate_table.RateOfOtherBooks.of(db.session, ws.id, row))
    if request.method == "GET":
        form = {name: getattr(row, name) for name in RATE_FIELDS}
        form = {name: "" if value is None else str(value) for name, value in form.items()}
        return _render_rates(ws, form, {}, editing=row.id)
    form = {name: request.form.get(name, "") for name in RATE_FIELDS}
    try:
        rate_table.update_rate(db.session, ws.id, row.id, form)
    except rate_table.RateError as exc:
        db.session.rollback()
        errors = rate_table.rate_errors(form) or {exc.field: exc.message}
        return _render_rates(ws, form, errors, editing=rate_id, status=422)
    changed(ws, f"Rate #{rate_id} updated.")
    return redirect(url_for("mappings.rates", workspace_id=ws.id))


@bp.route("/workspaces/<int:workspace_id>/rates/<int:rate_id>/delete", methods=["POST"])
@admin_required
def delete_rate(workspace_id: int, rate_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    try:
        deleted = rate_table.delete_rate(db.session, ws.id, rate_id)
    except rate_table.RateOfOtherBooks as exc:
        return _read_only(ws, exc)
    if not deleted:
        abort(404)
    changed(ws, f"Rate #{rate_id} deleted.")
    return redirect(url_for("mappings.rates", workspace_id=ws.id))

"""Workspace pages: the list, an overview, settings, API tokens and the signing secret."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from connector import db, pipeline, trackers
from connector.admin import bp, onboarding, once
from connector.admin.confirm import confirm_page, confirmed
from connector.admin.words import STATUS_WORDS
from connector.auth import admin_required, admin_workspace_ids, issue_api_token, workspace_for_admin
from connector.connections.store import secret_box
from connector.invoice_queries import needing_attention
from connector.models import (
    ApiToken,
    Draft,
    DraftStatus,
    Timesheet,
    Workspace,
    WorkspaceMember,
    utcnow,
)
from connector.providers import DISPLAY_NAMES, PROVIDER_NAMES
from connector.settings import GROUPINGS, SettingsError, WorkspaceSettings, validate_settings
from connector.workspaces import (
    create_workspace,
    retire_old_signing_secrets,
    rotate_signing_secret,
    signing_secrets,
    webhook_url,
)
from mappings.service import change_notice

# Statuses that need a human (or a mapping/rate/reconnect) before an invoice exists.
ATTENTION_STATUSES = (
    DraftStatus.NEEDS_MAPPING,
    DraftStatus.NEEDS_RATE,
    DraftStatus.CURRENCY_MISMATCH,
    DraftStatus.RECONNECT_NEEDED,
    DraftStatus.FAILED,
    DraftStatus.NEEDS_ATTENTION,
)


NAME_MAX = 200  # workspaces.name and tracker_workspace_id are String(200)


def no_store(response: Any) -> Any:
    """Pages that show a secret once must not be kept by the browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/")
@admin_required
def index() -> Any:
    ids = sorted(admin_workspace_ids())
    if len(ids) == 1:
        return redirect(url_for("admin.workspace", workspace_id=ids[0]))
    if not ids:
        return redirect(url_for("admin.new_workspace"))
    return redirect(url_for("admin.workspaces"))


@bp.route("/workspaces")
@admin_required
def workspaces() -> Any:
    ids = admin_workspace_ids()
    rows = db.session.scalars(
        select(Workspace).where(Workspace.id.in_(ids)).order_by(Workspace.name)
    ).all()
    return render_template("admin/workspaces.html", workspaces=rows, display_names=DISPLAY_NAMES)


@bp.route("/workspaces/<int:workspace_id>")
@admin_required
def workspace(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    counts = dict(
        db.session.execute(
            select(Draft.status, func.count())
            .join(Timesheet, Timesheet.id == Draft.timesheet_pk)
            .where(
                Draft.workspace_id == ws.id,
                Draft.revision == Timesheet.revision,
                Draft.status.in_(ATTENTION_STATUSES),
            )
            .group_by(Draft.status)
        ).all()
    )
    counts.pop(DraftStatus.NEEDS_ATTENTION, None)  # counted per invoice, withdrawn ones too
    flagged = needing_attention(db.session, ws.id)
    approvals = db.session.scalar(
        select(func.count()).select_from(Timesheet).where(Timesheet.workspace_id == ws.id)
    )
    steps = onboarding.checklist(ws)
    return render_template(
        "admin/workspace.html",
        workspace=ws,
        webhook_url=webhook_url(current_app.config["PUBLIC_BASE_URL"], ws),
        counts=counts,
        flagged=flagged,
        status_words=STATUS_WORDS,
        attention=sum(counts.values()) + flagged,
        approvals=approvals,
        steps=steps,
        setup_done=all(step.state == onboarding.StepState.DONE for step in steps),
        accounting=onboarding.accounting_state(ws),
        provider_name=DISPLAY_NAMES.get(ws.provider, ws.provider),
        # A tracker with a webhook token of its own (registered on connect) needs no URL shown.
        uses_workspace_secret=onboarding.uses_workspace_secret(ws),
    )


@bp.route("/workspaces/<int:workspace_id>/auto-invoicing", methods=["POST"])
@admin_required
def auto_invoicing(workspace_id: int) -> Any:
    """The checklist's switch (Settings has the same checkbox)."""
    ws = workspace_for_admin(workspace_id)
    ws.auto_invoicing = request.form.get("enabled") == "on"
    db.session.commit()
    if ws.auto_invoicing:
        flash(
            "Automatic invoicing is on: each approved timesheet now becomes one draft per "
            "customer.",
            "success",
        )
    else:
        flash("Automatic invoicing is off: approvals are recorded, no drafts made.", "success")
    return redirect(url_for("admin.workspace", workspace_id=ws.id))


@bp.route("/workspaces/<int:workspace_id>/use-ledger", methods=["POST"])
@admin_required
def use_ledger(workspace_id: int) -> Any:
    """Keep the built-in ledger instead of connecting QuickBooks or Stripe."""
    ws = workspace_for_admin(workspace_id)
    ws.provider = "local"
    db.session.commit()
    flash("Drafts now go to the built-in ledger; connect an accounting system later.", "success")
    return redirect(url_for("admin.workspace", workspace_id=ws.id))


@bp.route("/workspaces/new", methods=["GET", "POST"])
@admin_required
def new_workspace() -> Any:
    """A first workspace without a terminal: the admin who creates it becomes its admin.

    Post/redirect/get: the new signing secret and API token are held for one GET of the
    "ready" page, so a reload neither creates a second workspace nor shows them again."""
    sources = trackers.SOURCES
    form = {"name": "", "tracker_source": trackers.default_source(), "tracker_workspace_id": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {key: (request.form.get(key) or "").strip() for key in form}
        form["tracker_source"] = form["tracker_source"] or trackers.default_source()
        errors = new_workspace_errors(form)
        if not errors:
            handle = _create_workspace(form)
            if handle is None:
                errors["tracker_workspace_id"] = _tracker_id_taken_words(form["tracker_source"])
            else:
                workspace_id, token = handle
                return redirect(
                    url_for("admin.workspace_created", workspace_id=workspace_id, handle=token), 303
                )
    page = render_template(
        "admin/workspace_new.html", form=form, errors=errors, sources=sources.values()
    )
    return (page, 422) if errors else page


def _tracker_id_taken_words(source: str) -> str:
    name = trackers.display_name(source)
    return (
        f"Another workspace here already receives this {name} workspace's approvals. Open that "
        "workspace (ask its admins to add you), or check the id."
    )


def new_workspace_errors(form: dict[str, str]) -> dict[str, str]:
    """Every field's problem at once, in words (the form shows each beside its field)."""
    errors: dict[str, str] = {}
    if not form["name"]:
        errors["name"] = "Give the workspace a name (for example your company's)."
    elif len(form["name"]) > NAME_MAX:
        errors["name"] = f"Use at most {NAME_MAX} characters."
    source = trackers.SOURCES.get(form["tracker_source"])
    if source is None:
        errors["tracker_source"] = "Choose one of the listed time trackers."
        return errors
    where = f" ({source.workspace_id_hint})" if source.workspace_id_hint else ""
    tracker_id = form["tracker_workspace_id"]
    if not tracker_id:
        errors["tracker_workspace_id"] = f"Enter the {source.display_name} workspace id{where}."
    elif len(tracker_id) > NAME_MAX:
        errors["tracker_workspace_id"] = f"Use at most {NAME_MAX} characters."
    elif problem := trackers.workspace_id_problem(source.name, tracker_id):
        errors["tracker_workspace_id"] = problem
    elif _tracker_id_taken(source.name, tracker_id):
        errors["tracker_workspace_id"] = _tracker_id_taken_words(source.name)
    return errors


def _tracker_id_taken(source: str, tracker_id: str) -> bool:
    return (
        db.session.scalar(
            select(Workspace.id).where(
                Workspace.tracker_source == source,
                Workspace.tracker_workspace_id == tracker_id,
            )
        )
        is not None
    )


def _create_workspace(form: dict[str, str]) -> tuple[int, str] | None:
    """Create it with its admin and hold its secrets for the "ready" page; None when another
    request took the tracker id first (the unique constraint decides, nothing half-written)."""
    admin_id = int(current_user.id)
    try:
        created = create_workspace(
            db.session,
            secret_box(current_app.config),
            name=form["name"],
            tracker_workspace_id=form["tracker_workspace_id"],
            tracker_source=form["tracker_source"],
        )
        db.session.add(WorkspaceMember(workspace_id=created.workspace.id, admin_user_id=admin_id))
        handle = once.keep(
            db.session,
            once.reveal("workspace_created"),
            admin_id,
            {
                "page": "workspace_created",
                "workspace_id": created.workspace.id,
                "signing_secret": created.signing_secret,
                "api_token": created.api_token,
            },
        )
        workspace_id = created.workspace.id
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return workspace_id, handle


@bp.route("/workspaces/<int:workspace_id>/created/<handle>")
@admin_required
def workspace_created(workspace_id: int, handle: str) -> Any:
    """The new workspace's signing secret and API token, shown by this one GET only."""
    ws = workspace_for_admin(workspace_id)
    value = _revealed(handle, "workspace_created", ws)
    page = render_template(
        "admin/workspace_created.html",
        workspace=ws,
        signing_secret=value and value["signing_secret"],
        api_token=value and value["api_token"],
        webhook_url=webhook_url(current_app.config["PUBLIC_BASE_URL"], ws),
        uses_workspace_secret=onboarding.uses_workspace_secret(ws),
    )
    return no_store(current_app.make_response(page))


# --- settings ------------------------------------------------------------------------------------
SETTING_FIELDS = (
    "grouping",
    "billing_increment",
    "payment_terms_days",
    "default_currency",
)
# Added to the form later: an older form without them keeps the stored values.
OPTIONAL_SETTING_FIELDS = ("consolidation", "period", "week_start")


@bp.route("/workspaces/<int:workspace_id>/settings", methods=["GET", "POST"])
@admin_required
def settings(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    current = WorkspaceSettings.from_dict(ws.settings)
    errors: dict[str, str] = {}
    form: dict[str, Any] = {**current.to_dict(), "auto_invoicing": ws.auto_invoicing}
    form["provider"] = ws.provider
    if request.method == "POST":
        changes: dict[str, Any] = {name: request.form.get(name, "") for name in SETTING_FIELDS}
        changes["tax_code"] = request.form.get("tax_code", "")
        changes.update(
            {name: request.form[name] for name in OPTIONAL_SETTING_FIELDS if name in request.form}
        )
        provider = request.form.get("provider", ws.provider)
        auto = request.form.get("auto_invoicing") == "on"
        form.update(changes, provider=provider, auto_invoicing=auto)
        # Each field on its own first, so every field's problem is shown at once.
        for name, value in changes.items():
            try:
                validate_settings({name: value}, current)
            except SettingsError as exc:
                errors[exc.field] = exc.message
        if not errors:
            try:
                validated = validate_settings(changes, current)
            except SettingsError as exc:
                errors[exc.field] = exc.message
        if provider not in PROVIDER_NAMES:
            errors["provider"] = "choose one of the listed accounting systems"
        if not errors:
            ws.settings = validated.to_dict()
            switched = ws.provider != provider
            ws.provider = provider
            ws.auto_invoicing = auto
            db.session.commit()
            if switched:  # other books: held approvals are planned again with their mappings
                pipeline.release_holds(ws.id)

            notice = change_notice(ws.id)["notice"]
            flash("Settings saved." + (f" {notice}" if notice else ""), "success")
            return redirect(url_for("admin.settings", workspace_id=ws.id))
    page = render_template(
        "admin/settings.html",
        workspace=ws,
        form=form,
        errors=errors,
        groupings=GROUPINGS,
        providers=[(name, DISPLAY_NAMES[name]) for name in PROVIDER_NAMES],
    )
    return (page, 422) if errors else page


# --- API tokens ----------------------------------------------------------------------------------
def _tokens(ws: Workspace) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.workspace_id == ws.id).order_by(ApiToken.id.desc())
        )
    )


@bp.route("/workspaces/<int:workspace_id>/tokens", methods=["GET", "POST"])
@admin_required
def tokens(workspace_id: int) -> Any:
    """Post/redirect/get: a created token is held for one GET of ``shown_token``, so a reload
    never creates a second token."""
    ws = workspace_for_admin(workspace_id)
    error = None
    name = ""
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()
        if not name or len(name) > 200:
            error = "Give the token a name of 1 to 200 characters (what uses it?)."
        else:
            token = issue_api_token(db.session, ws.id, name=name)
            handle = once.keep(
                db.session,
                once.reveal("api_token"),
                int(current_user.id),
                {"page": "api_token", "workspace_id": ws.id, "token": token, "name": name},
            )
            db.session.commit()
            return redirect(url_for("admin.shown_token", workspace_id=ws.id, handle=handle), 303)
    return _tokens_page(ws, error=error, name=name if error else "")  # kept to fix, not retyped


@bp.route("/workspaces/<int:workspace_id>/tokens/new/<handle>")
@admin_required
def shown_token(workspace_id: int, handle: str) -> Any:
    """The token just created, shown by this one GET; later GETs say it was shown once."""
    ws = workspace_for_admin(workspace_id)
    value = _revealed(handle, "api_token", ws)
    return _tokens_page(
        ws,
        new_token=value["token"] if value else None,
        new_token_name=value["name"] if value else None,
        already_shown=value is None,
    )


def _tokens_page(ws: Workspace, **context: Any) -> Any:
    error = context.get("error")
    page = render_template("admin/tokens.html", workspace=ws, tokens=_tokens(ws), **context)
    return no_store(current_app.make_response((page, 422 if error else 200)))


def _revealed(handle: str, page: str, ws: Workspace) -> dict[str, Any] | None:
    """The one-time value behind ``handle`` if it is this page's, for this workspace."""
    value = once.take(once.reveal(page), handle, int(current_user.id))
    if isinstance(value, dict) and value.get("page") == page and value.get("workspace_id") == ws.id:
        return value
    return None


@bp.route("/workspaces/<int:workspace_id>/tokens/<int:token_id>/revoke", methods=["POST"])
@admin_required
def revoke_token(workspace_id: int, token_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    row = db.session.get(ApiToken, token_id)
    if row is None or row.workspace_id != ws.id:
        abort(404)
    if row.revoked_at is None and not confirmed():
        used = (
            f"It was last used {row.last_used_at:%Y-%m-%d %H:%M} UTC."
            if row.last_used_at
            else "It has never been used."
        )
        return confirm_page(
            workspace=ws,
            title=f"Revoke the API token “{row.name}” ({row.prefix}…)?",
            consequences=[
                f"Every program calling the API with this token gets 401 from now on. {used}",
                "A revoked token cannot be restored; create a new one if it is still needed.",
                "Drafts, mappings and rates are not changed.",
            ],
            action=url_for("admin.revoke_token", workspace_id=ws.id, token_id=row.id),
            button="Revoke the token",
            cancel_url=url_for("admin.tokens", workspace_id=ws.id),
        )
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.commit()
        flash(f"Token {row.prefix}… revoked; callers using it now get 401.", "success")
    return redirect(url_for("admin.tokens", workspace_id=ws.id))


# --- signing secret ------------------------------------------------------------------------------
@bp.route("/workspaces/<int:workspace_id>/signing-secret", methods=["GET", "POST"])
@admin_required
def signing_secret(workspace_id: int) -> Any:
    """Rotating shows the new secret exactly once (post/redirect/get to ``shown_signing_secret``);
    it is stored encrypted and never shown again."""
    ws = workspace_for_admin(workspace_id)
    box = secret_box(current_app.config)
    if request.method == "POST":
        action = request.form.get("action")
        if action == "rotate":
            secret = rotate_signing_secret(db.session, box, ws)
            handle = once.keep(
                db.session,
                once.reveal("signing_secret"),
                int(current_user.id),
                {"page": "signing_secret", "workspace_id": ws.id, "secret": secret},
            )
            db.session.commit()
            return redirect(
                url_for("admin.shown_signing_secret", workspace_id=ws.id, handle=handle), 303
            )
        if action == "retire":
            retire_old_signing_secrets(db.session, box, ws)
            db.session.commit()
            flash("Older signing secrets retired: only the newest one verifies now.", "success")
            return redirect(url_for("admin.signing_secret", workspace_id=ws.id), 303)
        abort(400, "Choose one of the page's buttons: create a new secret or retire older ones.")
    return _signing_secret_page(ws)


@bp.route("/workspaces/<int:workspace_id>/signing-secret/new/<handle>")
@admin_required
def shown_signing_secret(workspace_id: int, handle: str) -> Any:
    """The secret just created, shown by this one GET; later GETs say it was shown once."""
    ws = workspace_for_admin(workspace_id)
    value = _revealed(handle, "signing_secret", ws)
    return _signing_secret_page(
        ws, revealed=value["secret"] if value else None, already_shown=value is None
    )


def _signing_secret_page(ws: Workspace, **context: Any) -> Any:
    page = render_template(
        "admin/signing_secret.html",
        workspace=ws,
        active=len(signing_secrets(secret_box(current_app.config), ws)),
        webhook_url=webhook_url(current_app.config["PUBLIC_BASE_URL"], ws),
        **context,
    )
    return no_store(current_app.make_response(page))

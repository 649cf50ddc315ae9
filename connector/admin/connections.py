"""The connections page: which accounting accounts are linked, and how to (re)connect them.

The connect/callback/disconnect routes belong to each provider (``providers/<name>/web/``);
this page only shows their state, includes each provider's card template from the registry, and
links or posts to them.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import func, select

from connector import db, trackers
from connector.admin import bp
from connector.admin.confirm import confirm_page, confirmed
from connector.auth import admin_required, workspace_for_admin
from connector.config import SETTINGS, Setting
from connector.models import Connection, ConnectionStatus, Draft, DraftStatus
from connector.providers import (
    DISPLAY_NAMES,
    EXTERNAL_PROVIDERS,
    PROVIDERS,
    missing_connect_settings,
)
from webhooks import polling

# Words for the environment column: QuickBooks says sandbox/production, Stripe test/live.
ENVIRONMENT_LABELS = {
    "sandbox": "Sandbox",
    "production": "Production",
    "test": "Test mode",
    "live": "Live mode",
}


def masked_key(connection: Connection | None) -> str | None:
    """What the provider helper stored to recognise a key by (never the key itself)."""
    if connection is None:
        return None
    meta = connection.meta or {}
    return str(meta["masked_key"]) if meta.get("masked_key") else None


RETURN_KEY = "return_after_connect"


def confirm_disconnect(workspace: Any, provider: str) -> str | None:
    """The confirmation page of a disconnect, or None once the admin confirmed it."""
    if confirmed():
        return None
    name = DISPLAY_NAMES[provider]
    drafted = (
        db.session.scalar(
            select(func.count())
            .select_from(Draft)
            .where(
                Draft.workspace_id == workspace.id,
                Draft.provider == provider,
                Draft.status == DraftStatus.DRAFTED,
            )
        )
        or 0
    )
    consequences = [
        f"{drafted} draft(s) already created in {name} stay there as they are."
        if drafted
        else f"No draft has been created in {name} yet.",
    ]
    if workspace.provider == provider:
        consequences.append(
            f"This workspace still bills into {name}: new approvals wait (nothing is lost) and "
            "are invoiced once it is connected again, or after you choose another accounting "
            "system in Settings."
        )
    consequences.append(f"This app's access to {name} is revoked; connecting again asks anew.")
    return confirm_page(
        workspace=workspace,
        title=f"Disconnect {name}?",
        consequences=consequences,
        action=f"/workspaces/{workspace.id}/connections/{provider}/disconnect",
        button=f"Disconnect {name}",
        cancel_url=f"/workspaces/{workspace.id}/connections",
    )


def remember_return(workspace_id: int, target: str | None) -> None:
    """A hold's "Reconnect" button passes the approval it came from; connecting returns there."""
    target = target or ""
    if target.startswith(f"/workspaces/{workspace_id}/") and "//" not in target:
        session[RETURN_KEY] = {"workspace_id": workspace_id, "url": target}
    else:  # opened from elsewhere: an older hold's return no longer applies
        session.pop(RETURN_KEY, None)


def return_after_connect(workspace_id: int, default: str) -> str:
    """Where a successful connect lands: the remembered approval, else ``default`` (once)."""
    remembered = session.pop(RETURN_KEY, None)
    if isinstance(remembered, dict) and remembered.get("workspace_id") == workspace_id:
        return str(remembered.get("url") or default)
    return default


@bp.route("/workspaces/<int:workspace_id>/connections")
@admin_required
def connections(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    remember_return(ws.id, request.args.get("back"))
    rows = {
        c.provider: c
        for c in db.session.scalars(select(Connection).where(Connection.workspace_id == ws.id))
    }
    cards = [
        {
            "provider": name,
            "display_name": DISPLAY_NAMES[name],
            "connection": rows.get(name),
            "masked_key": masked_key(rows.get(name)),
            "environment": ENVIRONMENT_LABELS.get(
                (rows[name].environment or "") if name in rows else ""
            ),
            "in_use": ws.provider == name,
            # Status sync (Stripe, key-based): the URL to register and the saved secret's hint.
            "webhook_url": f"{current_app.config['PUBLIC_BASE_URL']}/webhooks/{name}/"
            f"{ws.endpoint_token}",
            "webhook_secret_hint": ((rows[name].meta or {}) if name in rows else {}).get(
                "webhook_secret_hint"
            ),
            "method": ((rows[name].meta or {}) if name in rows else {}).get("method"),
            "meta": dict((rows[name].meta or {}) if name in rows else {}),
            # The provider's own part of its card, and where its Reconnect button goes.
            "template": PROVIDERS[name].card_template,
            "reconnect_url": PROVIDERS[name].reconnect_link(ws.id),
            # What this server lacks to connect it (its card then names them, no Connect button).
            "connect_missing": missing_connect_settings(name, current_app.config),
        }
        for name in EXTERNAL_PROVIDERS
    ]
    reconnect = [
        card
        for card in cards
        if card["connection"] is not None
        and card["connection"].status == ConnectionStatus.RECONNECT_NEEDED
    ]
    return render_template(
        "admin/connections.html",
        workspace=ws,
        cards=cards,
        reconnect=reconnect,
        statuses=ConnectionStatus,
        local_in_use=ws.provider == "local",
        tracker=tracker_card(ws, rows),
    )


def tracker_card(workspace: Any, rows: dict[str, Connection]) -> dict[str, Any] | None:
    """The card of the workspace's time tracker (its source's template and variables, from the
    registry): who is connected, polls, the last error in words. None: the source has no card."""
    source = trackers.SOURCES.get(workspace.tracker_source)
    if source is None or source.card is None:
        return None
    connection = rows.get(source.name)
    return {
        **source.card.context(workspace.id, connection),
        "provider": source.name,
        "display_name": source.display_name,
        "connection": connection,
        "status": trackers.tracker_status(workspace.id),
        "template": source.card.template,
        "token_label": source.account.token_label if source.account else None,
        # What this server lacks for the source's own sign-in (a pasted token needs nothing).
        "sign_in_missing": _settings_named(
            trackers.missing_sign_in_settings(source.name, current_app.config)
        ),
    }


def _settings_named(names: tuple[str, ...]) -> list[Setting]:
    """The declared settings (name and meaning) behind ``names``, for a page that lists them."""
    # The service's own, and what the providers and trackers declare (collected by the app).
    extra = current_app.extensions.get("declared_settings", ())
    declared = {setting.name: setting for setting in (*SETTINGS, *extra)}
    return [declared[name] for name in names if name in declared]


# --- the workspace's tracker, through the registry (any source with an Account / a Poller) ---
def _tracker_of(workspace: Any) -> trackers.Source:
    source = trackers.SOURCES.get(workspace.tracker_source)
    if source is None:
        abort(404)
    return source


@bp.post("/workspaces/<int:workspace_id>/connections/tracker/token")
@admin_required
def tracker_connect_token(workspace_id: int) -> Any:
    """Connect the workspace's tracker with a pasted token or API key (the card's form)."""
    ws = workspace_for_admin(workspace_id)
    source = _tracker_of(ws)
    if source.account is None:
        abort(404)
    try:
        said = trackers.connect_account(
            source.name, ws.id, request.form.get("token", ""), str(current_user.id)
        )
    except trackers.ConnectRefused as exc:
        flash(f"{source.display_name} was not connected: {exc.message}", "error")
    else:
        flash(said, "success")
    return redirect(url_for("admin.connections", workspace_id=ws.id))


@bp.post("/workspaces/<int:workspace_id>/connections/tracker/poll")
@admin_required
def tracker_poll_now(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    source = _tracker_of(ws)
    status = trackers.tracker_status(ws.id)
    if source.poller is None or status.status != ConnectionStatus.CONNECTED:
        flash(f"{source.display_name} is not connected: connect it first.", "error")
    else:
        polling.schedule_poll(source.name, ws.id, delay_seconds=0.0, run_now=True)
        flash(
            f"Polling {source.display_name} now; new approvals appear on the Approvals page.",
            "success",
        )
    return redirect(url_for("admin.connections", workspace_id=ws.id))


@bp.post("/workspaces/<int:workspace_id>/connections/tracker/disconnect")
@admin_required
def tracker_disconnect(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
    source = _tracker_of(ws)
    outcome = trackers.disconnect_account(source.name, ws.id)
    if outcome.done:
        flash(
            f"{source.display_name} disconnected: polling stopped and its credentials were "
            "deleted here. Drafts already made are kept.",
            "success",
        )
    if outcome.warning:
        flash(outcome.warning, "error")
    return redirect(url_for("admin.connections", workspace_id=ws.id))

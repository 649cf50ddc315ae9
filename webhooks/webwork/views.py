"""Console routes of the WebWork connection: OAuth connect/callback, paste a token, Poll now,
Disconnect. The card that links here is on the connections page (``connector/admin``).

OAuth is the shared flow (:mod:`connector.oauth.flow`), as QuickBooks' and Stripe's: a ``state``
kept server-side, bound to the admin and the workspace, valid 15 minutes, used once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, request
from flask_login import current_user

from connector import trackers
from connector.auth import admin_required, workspace_for_admin
from connector.oauth import flow
from webhooks.webwork import connection as conn
from webhooks.webwork.client import settings_from_config
from webhooks.webwork.polls import schedule_poll
from webhooks.webwork.settings import SETTINGS

bp = Blueprint("webwork_connection", __name__, template_folder="templates")

PROVIDER = "webwork"
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def redirect_uri() -> str:
    return str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + "/connections/webwork/callback"


def _back(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/connections"


@bp.get("/workspaces/<int:workspace_id>/connections/webwork/connect")
@admin_required
def connect(workspace_id: int) -> Any:
    workspace_for_admin(workspace_id)
    settings = settings_from_config(current_app.config)
    missing = trackers.missing_sign_in_settings(PROVIDER, current_app.config)
    if missing or not settings.oauth_configured:
        return flow.problem_page(
            "Signing in with WebWork is not set up on this server",
            "This server has no WebWork OAuth app, so the Connect WebWork button is not "
            "offered. Connect with a WebWork personal access token instead (Connections page, "
            "under WebWork): it works without any server setting.",
            400,
            workspace_id,
            settings=[SETTINGS_BY_NAME[name] for name in missing if name in SETTINGS_BY_NAME],
            callback_url=redirect_uri(),
        )
    return flow.start(
        PROVIDER,
        workspace_id,
        lambda state: conn.authorize_url(settings, redirect_uri=redirect_uri(), state=state),
    )


@bp.get("/connections/webwork/callback")
@admin_required
def callback() -> Any:
    return flow.callback(PROVIDER, "WebWork", _finish)


def _finish(answer: flow.Answer) -> Any:
    """WebWork answered with a code: tokens, then one call proving they see the workspace."""
    workspace = answer.workspace
    settings = settings_from_config(current_app.config)
    try:
        credentials = conn.exchange_code(settings, code=answer.code, redirect_uri=redirect_uri())
        meta = conn.connect_with_oauth(
            workspace.id,
            workspace.tracker_workspace_id,
            credentials,
            connected_by=str(current_user.id),
        )
    except conn.OAuthError as exc:
        return flow.problem_page(
            "WebWork connection failed",
            f"WebWork did not issue tokens: {exc.message} Try connecting again.",
            400 if exc.permanent else 502,
            workspace.id,
        )
    except conn.ConnectError as exc:
        return flow.problem_page("WebWork connection refused", exc.message, 400, workspace.id)
    flash(
        f"WebWork connected as {meta['connected_as']}. Approved timesheets are found by "
        "polling; the first poll starts now.",
        "success",
    )
    return redirect(_back(workspace.id))


@bp.post("/workspaces/<int:workspace_id>/connections/webwork/token")
@admin_required
def connect_token(workspace_id: int) -> Any:
    workspace = workspace_for_admin(workspace_id)
    token = request.form.get("token", "")
    try:
        meta = conn.connect_with_token(
            workspace.id,
            workspace.tracker_workspace_id,
            token,
            connected_by=str(current_user.id),
        )
    except conn.ConnectError as exc:
        # The reason shows at the token field (connections.html, id webwork-pat).
        flash("WebWork was not connected: the token field says why.", "error")
        flash(exc.message, "field:webwork-pat")
        return redirect(_back(workspace.id))
    flash(
        f"WebWork connected as {meta['connected_as']} with a personal access token "
        f"({meta['masked_key']}). The first poll starts now.",
        "success",
    )
    return redirect(_back(workspace.id))


@bp.post("/workspaces/<int:workspace_id>/connections/webwork/poll")
@admin_required
def poll_now(workspace_id: int) -> Any:
    workspace = workspace_for_admin(workspace_id)

    row = conn.store_for(workspace.id).connection()
    if row is None or row.status != "connected":
        flash("WebWork is not connected: connect it first.", "error")
        return redirect(_back(workspace.id))
    schedule_poll(workspace.id, delay_seconds=0.0, run_now=True)
    flash("Polling WebWork now; new approvals appear on the Approvals page.", "success")
    return redirect(_back(workspace.id))


@bp.post("/workspaces/<int:workspace_id>/connections/webwork/disconnect")
@admin_required
def disconnect(workspace_id: int) -> Any:
    workspace = workspace_for_admin(workspace_id)
    if conn.disconnect(workspace.id):
        flash(
            "WebWork disconnected: polling stopped and the token was deleted here. Revoke it in "
            "WebWork too if nobody else uses it. Drafts already made are kept.",
            "success",
        )
    return redirect(_back(workspace.id))

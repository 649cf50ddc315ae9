"""Console routes of the WebWork connection: OAuth connect/callback, paste a token, Poll now,
Disconnect. The card that links here is on the connections page (``connector/admin``).

OAuth follows the QuickBooks flow: a one-time ``state`` kept server-side in this admin's session,
bound to the admin and the workspace, valid 15 minutes, used once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, request
from flask_login import current_user
from markupsafe import escape

from connector.auth import admin_required, workspace_for_admin
from connector.connections import oauth_state
from webhooks.webwork import connection as conn
from webhooks.webwork.client import settings_from_config
from webhooks.webwork.polls import schedule_poll

bp = Blueprint("webwork_connection", __name__)

SESSION_KEY = "webwork_oauth"


def redirect_uri() -> str:
    return str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + "/connections/webwork/callback"


def _back(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/connections"


def _problem_page(title: str, message: str, status: int, workspace_id: int | None) -> Any:
    back = (
        f'<p><a href="{escape(_back(workspace_id))}">Back to connections</a></p>'
        if workspace_id
        else ""
    )
    html = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(message)}</p>{back}</body></html>"
    )
    return html, status, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/workspaces/<int:workspace_id>/connections/webwork/connect")
@admin_required
def connect(workspace_id: int) -> Any:
    workspace_for_admin(workspace_id)
    settings = settings_from_config(current_app.config)
    if not settings.oauth_configured:
        return _problem_page(
            "WebWork sign-in is not set up",
            "This deployment has no WebWork OAuth app (set WEBWORK_CLIENT_ID and "
            "WEBWORK_CLIENT_SECRET). Paste a personal access token instead.",
            400,
            workspace_id,
        )
    state = oauth_state.begin(SESSION_KEY, workspace_id)
    return redirect(conn.authorize_url(settings, redirect_uri=redirect_uri(), state=state))


@bp.get("/connections/webwork/callback")
@admin_required
def callback() -> Any:
    pending, workspace_id = oauth_state.take(SESSION_KEY)  # one use only, whatever happens next
    error = request.args.get("error")
    if error:
        reason = (
            "You declined access in WebWork, so nothing was connected."
            if error == "access_denied"
            else f"WebWork did not grant access ({error})."
        )
        return _problem_page("WebWork was not connected", reason, 400, workspace_id)
    if pending is None:
        return _problem_page(
            "WebWork connection not accepted",
            "This sign-in answer does not belong to a connection you started here (or it is "
            "too old). Start again from the workspace's connections page.",
            400,
            workspace_id,
        )
    workspace = workspace_for_admin(int(workspace_id))
    code = request.args.get("code", "")
    if not code:
        return _problem_page(
            "WebWork connection not accepted",
            "WebWork's answer lacks the authorization code.",
            400,
            workspace.id,
        )
    settings = settings_from_config(current_app.config)
    try:
        credentials = conn.exchange_code(settings, code=code, redirect_uri=redirect_uri())
        meta = conn.connect_with_oauth(
            workspace.id,
            workspace.tracker_workspace_id,
            credentials,
            connected_by=str(current_user.id),
        )
    except conn.OAuthError as exc:
        return _problem_page(
            "WebWork connection failed",
            f"WebWork did not issue tokens: {exc.message} Try connecting again.",
            400 if exc.permanent else 502,
            workspace.id,
        )
    except conn.ConnectError as exc:
        return _problem_page("WebWork connection refused", exc.message, 400, workspace.id)
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
        flash(f"WebWork was not connected: {exc.message}", "error")
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

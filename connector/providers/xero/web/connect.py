"""Xero connect / callback / organisation picker / sales account / disconnect routes.

The shared flow (``connector.oauth.flow``) sends the admin to Xero's consent screen with a
server-side, single-use ``state`` bound to this admin and workspace and checks the answer; this
module's ``finish`` trades the code for tokens and asks Xero which organisations the consent
covers: one is connected at once; several are offered on the organisation picker, the tokens kept
meanwhile in the admin's session, Fernet-encrypted (``TOKEN_ENCRYPTION_KEYS``), for at most
``STATE_MAX_AGE_SECONDS``. The chosen organisation's tenant id is the
connection's account: the books its mappings belong to.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session
from flask_login import current_user

from connector import db
from connector.auth import admin_required, workspace_for_admin
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Workspace
from connector.oauth import client as oauth_client
from connector.oauth import flow
from connector.oauth.client import OAuthError
from connector.oauth.state import STATE_MAX_AGE_SECONDS
from connector.providers.base import ProviderError
from connector.providers.web_kit import kit
from connector.providers.xero import oauth
from connector.providers.xero.provider import create
from connector.providers.xero.settings import (
    DEFAULT_ACCOUNT_CODE,
    XeroConfigError,
    settings_from_config,
)

bp = Blueprint("xero_connection", __name__, template_folder="templates")

PROVIDER = "xero"
PENDING_KEY = "xero_pending"
MAX_CODE = 10


def redirect_uri() -> str:
    return str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + "/connections/xero/callback"


def _store(workspace_id: int) -> DbCredentialStore:
    return DbCredentialStore(workspace_id, PROVIDER, secret_box(current_app.config))


def _connections_url(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/connections"


def _problem(title: str, message: str, status: int = 400, workspace_id: int | None = None) -> Any:
    workspace = db.session.get(Workspace, workspace_id) if workspace_id else None
    page = render_template(
        "xero/problem.html",
        workspace=workspace,
        title=title,
        message=message,
        operator="XERO_" in message,
        back=_connections_url(workspace_id) if workspace_id else None,
    )
    return page, status, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/workspaces/<int:workspace_id>/connections/xero/connect")
@admin_required
def connect(workspace_id: int) -> Any:
    workspace_for_admin(workspace_id)
    try:
        settings = settings_from_config(current_app.config)
    except XeroConfigError as exc:
        return _problem("Xero is not set up", str(exc), 400, workspace_id)
    app = oauth.oauth_app(settings)
    return flow.start(
        PROVIDER,
        workspace_id,
        lambda state: oauth_client.authorize_url(app, redirect_uri=redirect_uri(), state=state),
    )


@bp.get("/connections/xero/callback")
@admin_required
def callback() -> Any:
    # The shared flow checks the state (used up whatever happens next), the admin's refusal and
    # the code; ``_consented`` is Xero's own part.
    return flow.callback(PROVIDER, "Xero", _consented)


def _consented(answer: flow.Answer) -> Any:
    workspace = answer.workspace
    try:
        settings = settings_from_config(current_app.config)
        credentials = oauth_client.exchange_code(
            oauth.oauth_app(settings), code=answer.code, redirect_uri=redirect_uri()
        )
        organisations = oauth.list_organisations(settings, credentials["access_token"])
    except XeroConfigError as exc:
        return _problem("Xero is not set up", str(exc), 400, workspace.id)
    except OAuthError as exc:
        return _problem(
            "Xero connection failed",
            f"Xero did not complete the connection: {exc.message} Try connecting again.",
            400 if exc.permanent else 502,
            workspace.id,
        )
    if not organisations:
        return _problem(
            "No Xero organisation was chosen",
            "The consent in Xero covered no organisation. Connect again and tick the "
            "organisation this workspace bills into.",
            400,
            workspace.id,
        )
    if len(organisations) == 1:
        return _finish(workspace, credentials, organisations[0])
    session[PENDING_KEY] = {
        "workspace_id": workspace.id,
        "user_id": str(current_user.id),
        "created": time.time(),
        # Fernet-encrypted: the session cookie is signed, not secret.
        "credentials": secret_box(current_app.config).encrypt_json(credentials),
        "organisations": [vars(org) for org in organisations],
    }
    return redirect(f"/workspaces/{workspace.id}/connections/xero/organisation")


def _pending(workspace_id: int) -> dict[str, Any] | None:
    pending = session.get(PENDING_KEY)
    if (
        not isinstance(pending, dict)
        or pending.get("workspace_id") != workspace_id
        or pending.get("user_id") != str(current_user.id)
        or time.time() - float(pending.get("created", 0)) > STATE_MAX_AGE_SECONDS
    ):
        return None
    return pending


@bp.route("/workspaces/<int:workspace_id>/connections/xero/organisation", methods=["GET", "POST"])
@admin_required
def organisation(workspace_id: int) -> Any:
    workspace = workspace_for_admin(workspace_id)
    pending = _pending(workspace.id)
    if pending is None:
        session.pop(PENDING_KEY, None)
        return _problem(
            "Choose the organisation again",
            "The Xero sign-in this choice belongs to is over (or too old). Connect Xero again.",
            400,
            workspace.id,
        )
    organisations = [oauth.Organisation(**row) for row in pending["organisations"]]
    error = None
    if request.method == "POST":
        chosen = next(
            (o for o in organisations if o.tenant_id == request.form.get("tenant_id")), None
        )
        if chosen is not None:
            session.pop(PENDING_KEY, None)
            credentials = secret_box(current_app.config).decrypt_json(pending["credentials"])
            return _finish(workspace, dict(credentials or {}), chosen)
        error = "Choose one of the organisations listed."
    page = render_template(
        "xero/organisations.html",
        workspace=workspace,
        organisations=organisations,
        current=_store(workspace.id).account_id,
        error=error,
    )
    return page, 400 if error else 200


def _finish(workspace: Workspace, credentials: dict[str, Any], org: oauth.Organisation) -> Any:
    store = _store(workspace.id)
    same_books = store.account_id == org.tenant_id
    # Posting choices and cached facts belong to one organisation: kept only when it is the same.
    meta = store.meta() if same_books else {}
    meta.update(connection_id=org.connection_id, connected_by=str(current_user.id))
    store.connect(
        credentials,
        account_id=org.tenant_id,
        environment=None,
        account_name=org.name[:500],
        meta=meta,
    )
    if not same_books:
        store.cache_drop()
    _read_organisation(workspace.id, store)
    if workspace.provider == "local":
        workspace.provider = PROVIDER
        db.session.commit()
    kit().connection_restored(workspace.id)
    flash(
        f"Xero connected: {org.name}. Invoices are created as DRAFT in Xero: review and approve "
        "them there.",
        "success",
    )
    return redirect(kit().return_after_connect(workspace.id, _connections_url(workspace.id)))


def _read_organisation(workspace_id: int, store: DbCredentialStore) -> None:
    """Best effort: the short code (deep links) and base currency; connecting never fails on it."""
    try:
        org = create(workspace_id, store, current_app.config).organisation()
    except ProviderError:
        current_app.logger.warning("Xero connected but the Organisation could not be read")
        return
    store.update_meta(
        short_code=org.get("ShortCode"),
        base_currency=org.get("BaseCurrency"),
        account_code=store.meta().get("account_code") or DEFAULT_ACCOUNT_CODE,
    )


@bp.post("/workspaces/<int:workspace_id>/connections/xero/posting")
@admin_required
def posting(workspace_id: int) -> Any:
    """The sales account (and optional item) every invoice line is posted with."""
    workspace = workspace_for_admin(workspace_id)
    account_code = request.form.get("account_code", "").strip()
    item_code = request.form.get("item_code", "").strip()
    if not account_code and not item_code:
        flash("Enter the sales account code (for example 200) or an item code.", "error")
        return redirect(_connections_url(workspace.id) + "#xero-posting")
    if len(account_code) > MAX_CODE or len(item_code) > 30:
        flash("Xero account codes have at most 10 characters, item codes 30.", "error")
        return redirect(_connections_url(workspace.id) + "#xero-posting")
    store = _store(workspace.id)
    try:
        problem = create(workspace.id, store, current_app.config).check_posting(
            account_code or None, item_code or None
        )
    except ProviderError as exc:
        flash(f"Xero could not be asked about that code: {exc.message}", "error")
        return redirect(_connections_url(workspace.id) + "#xero-posting")
    if problem:
        flash(problem, "error")
        return redirect(_connections_url(workspace.id) + "#xero-posting")
    store.update_meta(account_code=account_code or None, item_code=item_code or None)
    flash("Saved: new invoice lines are posted with these codes.", "success")
    return redirect(_connections_url(workspace.id))


@bp.post("/workspaces/<int:workspace_id>/connections/xero/disconnect")
@admin_required
def disconnect(workspace_id: int) -> Any:
    workspace = workspace_for_admin(workspace_id)
    page = kit().confirm_disconnect(workspace, PROVIDER)
    if page is not None:
        return page
    store = _store(workspace.id)
    removed = True
    try:
        settings = settings_from_config(current_app.config)
        provider = create(workspace.id, store, current_app.config)
        token = provider.client.access_token()
        connection_id = store.meta().get("connection_id")
        if connection_id:
            oauth.delete_connection(settings, token, str(connection_id))
        refresh_token = store.load().get("refresh_token")
        if refresh_token:
            oauth_client.revoke(oauth.oauth_app(settings), str(refresh_token))
    except (ProviderError, OAuthError, XeroConfigError) as exc:
        removed = False
        current_app.logger.warning("Xero disconnect at Xero failed: %s", exc)
    store.disconnect()
    if removed:
        flash("Xero disconnected; the organisation's connection was removed at Xero.", "success")
    else:
        flash(
            "Xero disconnected here, but Xero could not be told: remove the app in Xero "
            "(Settings, Connected apps) to be sure.",
            "warning",
        )
    return redirect(_connections_url(workspace.id))

"""QuickBooks Online connect / callback / disconnect routes.

Connect sends the admin to Intuit's consent screen through the shared flow
(:mod:`connector.oauth.flow`: a server-side, single-use ``state`` bound to this admin and the
workspace); the callback's finish step exchanges the code for tokens and stores them encrypted
(with the company's realm id) in the workspace's connection.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect
from flask_login import current_user
from sqlalchemy import update

from connector import db
from connector.auth import admin_required, workspace_for_admin
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Connection
from connector.oauth import flow
from connector.providers import missing_connect_settings, quickbooks
from connector.providers.base import ProviderError
from connector.providers.quickbooks import oauth
from connector.providers.web_kit import kit

bp = Blueprint("quickbooks_connection", __name__, template_folder="templates")

PROVIDER = "quickbooks"


def redirect_uri() -> str:
    return (
        str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/") + "/connections/quickbooks/callback"
    )


def _store(workspace_id: int) -> DbCredentialStore:
    return DbCredentialStore(workspace_id, PROVIDER, secret_box(current_app.config))


def _connections_url(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/connections"


def _problem_page(title: str, message: str, status: int = 400, workspace_id: int | None = None):
    """The shared connect problem page; a missing or wrong setting is the operator's to fix (the
    page then lists the variables this server lacks and the redirect URI to register)."""
    operator = message.startswith("QuickBooks is not configured") or "QUICKBOOKS_" in message
    return flow.problem_page(
        title,
        message,
        status,
        workspace_id,
        operator=operator,
        settings=missing_connect_settings(PROVIDER, current_app.config) if operator else (),
        callback_url=redirect_uri() if operator else None,
    )


@bp.get("/workspaces/<int:workspace_id>/connections/quickbooks/connect")
@admin_required
def connect(workspace_id: int) -> Any:
    workspace_for_admin(workspace_id)
    try:
        settings = oauth.settings_from_config(current_app.config)
    except oauth.QuickBooksConfigError as exc:
        missing = missing_connect_settings(PROVIDER, current_app.config)
        if missing:
            return flow.problem_page(
                "QuickBooks Online is not set up on this server",
                "This server has no Intuit app to connect QuickBooks Online with, so the "
                "Connections page offers no Connect button for it. Until it is set up, drafts can "
                "go to the built-in ledger (Settings); approvals waiting for QuickBooks are kept.",
                400,
                workspace_id,
                settings=missing,
                callback_url=redirect_uri(),
            )
        return _problem_page("QuickBooks is not set up", str(exc), 400, workspace_id)
    return flow.start(
        PROVIDER,
        workspace_id,
        lambda state: oauth.authorize_url(settings, redirect_uri=redirect_uri(), state=state),
        environment=settings.environment,  # the callback finishes in the one it started in
    )


@bp.get("/connections/quickbooks/callback")
@admin_required
def callback() -> Any:
    return flow.callback(PROVIDER, "QuickBooks", _finish)


def _finish(answer: flow.Answer) -> Any:
    """Intuit answered with a code and the company (``realmId``): tokens, then the company."""
    workspace = answer.workspace
    realm_id = answer.args.get("realmId", "")
    if not realm_id.isascii() or not realm_id.isdigit():
        return _problem_page(
            "QuickBooks connection not accepted",
            "QuickBooks' answer lacks the company id.",
            400,
            workspace.id,
        )
    try:
        settings = oauth.settings_from_config(
            current_app.config, answer.pending.data.get("environment")
        )
        credentials = oauth.exchange_code(settings, code=answer.code, redirect_uri=redirect_uri())
    except oauth.QuickBooksConfigError as exc:
        return _problem_page("QuickBooks is not set up", str(exc), 400, workspace.id)
    except oauth.OAuthError as exc:
        return _problem_page(
            "QuickBooks connection failed",
            f"Intuit did not issue tokens: {exc} Try connecting again.",
            400 if exc.permanent else 502,
            workspace.id,
        )

    store = _store(workspace.id)
    # Cached ids (service item, income account) belong to one company: keep them only when the
    # admin reconnects the same one.
    meta = store.meta() if store.account_id == realm_id else {}
    meta["connected_by"] = str(current_user.id)
    store.connect(credentials, account_id=realm_id, environment=settings.environment, meta=meta)
    company_name = _company_name(workspace.id, store)
    if workspace.provider == "local":
        workspace.provider = PROVIDER
        db.session.commit()

    kit().connection_restored(workspace.id)
    flash(
        f"QuickBooks Online connected ({settings.environment}"
        + (f": {company_name}" if company_name else "")
        + "). Invoices are created unsent: review them in QuickBooks before sending.",
        "success",
    )

    return redirect(kit().return_after_connect(workspace.id, _connections_url(workspace.id)))


def _company_name(workspace_id: int, store: DbCredentialStore) -> str | None:
    """Best effort: the company's name for the connections page; connecting never fails on it."""

    try:
        provider = quickbooks.create(workspace_id, store, current_app.config)
        info = provider.company_info()
    except ProviderError:
        current_app.logger.warning("QuickBooks connected but CompanyInfo could not be read")
        return None
    name = info.get("CompanyName") or None
    country = info.get("Country") or None
    store.update_meta(company_name=name, company_country=country)
    if name:
        with db.session_scope() as s:
            s.execute(
                update(Connection)
                .where(Connection.workspace_id == workspace_id, Connection.provider == PROVIDER)
                .values(account_name=str(name)[:500])
            )
    return name


@bp.post("/workspaces/<int:workspace_id>/connections/quickbooks/disconnect")
@admin_required
def disconnect(workspace_id: int) -> Any:

    workspace = workspace_for_admin(workspace_id)
    page = kit().confirm_disconnect(workspace, PROVIDER)
    if page is not None:
        return page
    store = _store(workspace.id)
    credentials = store.load()
    token = credentials.get("refresh_token") or credentials.get("access_token")
    revoked = True
    if token:
        try:
            oauth.revoke(
                oauth.settings_from_config(current_app.config, store.environment), str(token)
            )
        except (oauth.OAuthError, oauth.QuickBooksConfigError) as exc:
            revoked = False
            current_app.logger.warning("QuickBooks token revoke failed: %s", exc)
    store.disconnect()
    if revoked:
        flash("QuickBooks Online disconnected; access was revoked at Intuit.", "success")
    else:
        flash(
            "QuickBooks Online disconnected here, but Intuit could not be told to revoke access: "
            "remove the app in QuickBooks (Settings, Apps) to be sure.",
            "warning",
        )
    return redirect(_connections_url(workspace.id))

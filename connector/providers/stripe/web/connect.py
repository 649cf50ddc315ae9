"""Stripe connect (restricted key or Connect OAuth) and disconnect routes.

Two ways in, both ending in an encrypted, workspace-scoped ``connections`` row:

* Paste a restricted key (``rk_test_...``/``rk_live_...``): checked with two harmless reads
  (``GET /v1/customers?limit=1``, ``GET /v1/invoices?limit=1``) before anything is stored. A
  full secret key (``sk_...``) is accepted with a warning: it works, but grants far more than the
  connector needs. Publishable keys are refused.
* Connect OAuth (hosted deployments with ``STRIPE_CONNECT_CLIENT_ID`` and
  ``STRIPE_PLATFORM_SECRET_KEY``): ``/oauth/authorize`` -> callback -> ``/oauth/token``, through
  the shared flow (:mod:`connector.oauth.flow`: server-side single-use state, the callback
  page); the code exchange itself stays with Stripe's SDK (``providers.stripe_connect``). Only the
  connected account id is kept; calls then use the platform key with ``Stripe-Account``, so no
  account-level secret is stored at all. Disconnect calls ``/oauth/deauthorize``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import Blueprint, current_app, flash, redirect, request

from connector import db
from connector.auth import admin_required, workspace_for_admin
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Workspace
from connector.oauth import flow
from connector.oauth.client import OAuthApp, authorize_url
from connector.providers import missing_connect_settings
from connector.providers.stripe import DEFAULT_CONNECT_BASE_URL, META_CURRENCIES, META_PENDING
from connector.providers.stripe import connect as stripe_connect
from connector.providers.stripe.connect import (
    META_WEBHOOK_SECRET,
    META_WEBHOOK_SECRET_HINT,
    NEEDED_PERMISSIONS,
)
from connector.providers.web_kit import kit

bp = Blueprint("stripe_connection", __name__, template_folder="templates")

PROVIDER = "stripe"
KEY_RE = re.compile(r"(?P<kind>rk|sk)_(?P<mode>test|live)_[A-Za-z0-9]{8,247}")
# Status sync for key-based connections: the signing secret of the endpoint the admin registered
# in their own Stripe account, encrypted like every credential (the hint is what is shown).
WEBHOOK_SECRET_RE = re.compile(r"whsec_[A-Za-z0-9+/=_-]{8,250}")


def _connections_url(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/connections"


def _store(workspace_id: int) -> DbCredentialStore:
    return DbCredentialStore(workspace_id, PROVIDER, secret_box(current_app.config))


def mask_key(key: str) -> str:
    """``rk_test_…abcd``: enough for an admin to recognise the key, useless to anyone else."""
    match = KEY_RE.fullmatch(key)
    prefix = f"{match['kind']}_{match['mode']}_" if match else key[:3]
    return f"{prefix}…{key[-4:]}"


def key_fingerprint(api_key: str) -> str:
    """Stands in for the account id a restricted key may not read: the books it reaches."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def _carried_meta(
    store: DbCredentialStore,
    account_id: str | None,
    environment: str,
    fingerprint: str | None = None,
) -> dict:
    """What survives a reconnect to the same Stripe account (and mode): drafts half-created
    before it (so they resume rather than being created twice), the currency cache and the
    status-sync secret. Another account starts afresh."""
    old = store.meta()
    row = store.connection()
    carried: dict[str, Any] = {}
    same_account = row is not None and (
        row.account_id,
        row.environment,
        None if row.account_id else old.get("key_fingerprint"),
    ) == (account_id, environment, fingerprint)
    if same_account and old.get(META_PENDING):
        # Half-created drafts live in that account: another account never hears of their ids.
        carried[META_PENDING] = old[META_PENDING]
    if same_account and old.get(META_CURRENCIES):
        carried[META_CURRENCIES] = old[META_CURRENCIES]
    if same_account and old.get(META_WEBHOOK_SECRET):
        # The status sync endpoint registered in that account keeps working with a new key.
        carried[META_WEBHOOK_SECRET] = old[META_WEBHOOK_SECRET]
        carried[META_WEBHOOK_SECRET_HINT] = old.get(META_WEBHOOK_SECRET_HINT)
    return carried


def _after_connect(workspace: Workspace, message: str) -> Any:
    # A workspace still on the built-in ledger switches to Stripe; one that chose QuickBooks keeps
    # its choice (connecting is not the same as choosing where drafts go).
    if workspace.provider == "local":
        workspace.provider = PROVIDER
        db.session.commit()

    kit().connection_restored(workspace.id)
    flash(message, "success")

    return redirect(kit().return_after_connect(workspace.id, _connections_url(workspace.id)))


def _fail(workspace_id: int, message: str, *, field: str | None = None) -> Any:
    """Back to Connections saying why; with ``field`` the reason shows at that form field (its
    id), the banner only points there."""
    if field is None:
        flash(message, "error")
    else:
        flash("Stripe was not connected: the key field says why.", "error")
        flash(message, f"field:{field}")
    return redirect(_connections_url(workspace_id))


KEY_FIELD = "stripe-api-key"  # the key input's id on the Connections page (stripe/card.html)


@bp.post("/workspaces/<int:workspace_id>/connections/stripe/key")
@admin_required
def save_key(workspace_id: int) -> Any:
    workspace = workspace_for_admin(workspace_id)
    api_key = (request.form.get("api_key") or "").strip()
    if api_key.startswith("pk_"):
        return _fail(
            workspace_id,
            "That is a publishable key. Paste a restricted key (rk_test_… or rk_live_…).",
            field=KEY_FIELD,
        )
    match = KEY_RE.fullmatch(api_key)
    if not match:
        return _fail(
            workspace_id,
            "That does not look like a Stripe key. Paste a restricted key, which starts with "
            "rk_test_ or rk_live_.",
            field=KEY_FIELD,
        )
    try:
        account_id = stripe_connect.validate_key(current_app.config, api_key)
    except ValueError as exc:
        return _fail(workspace_id, str(exc), field=KEY_FIELD)
    environment = match["mode"]
    store = _store(workspace_id)
    fingerprint = None if account_id else key_fingerprint(api_key)
    meta = _carried_meta(store, account_id, environment, fingerprint)
    meta.update(
        method="api_key",
        masked_key=mask_key(api_key),
        key_type="restricted" if match["kind"] == "rk" else "secret",
    )
    if fingerprint:
        meta["key_fingerprint"] = fingerprint
    store.connect(
        credentials={"method": "api_key", "api_key": api_key},
        account_id=account_id,
        environment=environment,
        meta=meta,
    )
    if match["kind"] == "sk":
        flash(
            "Connected with a full secret key. It works, but it can do anything in your Stripe "
            f"account: replace it with a restricted key limited to {NEEDED_PERMISSIONS}.",
            "warning",
        )
    mode = "live" if environment == "live" else "test"
    return _after_connect(workspace, f"Stripe connected in {mode} mode.")


@bp.get("/workspaces/<int:workspace_id>/connections/stripe/connect")
@admin_required
def connect(workspace_id: int) -> Any:
    workspace_for_admin(workspace_id)
    config = current_app.config
    client_id = config.get("STRIPE_CONNECT_CLIENT_ID")
    missing = missing_connect_settings(PROVIDER, config)
    if missing or not client_id:
        return flow.problem_page(
            "Stripe Connect is not set up on this server",
            "This server has no Stripe Connect platform, so the Connections page offers no "
            "Stripe Connect link. Connect with a Stripe restricted key instead (Connections "
            "page, under Stripe): it works without any server setting.",
            400,
            workspace_id,
            settings=missing,
            callback_url=f"{config['PUBLIC_BASE_URL']}/connections/stripe/callback",
        )
    base = config.get("STRIPE_CONNECT_BASE_URL") or DEFAULT_CONNECT_BASE_URL
    app = OAuthApp(
        label="Stripe",
        client_id=str(client_id),
        client_secret="",  # the code is exchanged by Stripe's SDK with the platform key
        authorize_url=f"{base}/oauth/authorize",
        token_url=f"{base}/oauth/token",
        scopes=("read_write",),
    )
    callback_url = f"{config['PUBLIC_BASE_URL']}/connections/stripe/callback"

    # The state is kept server-side, single use, bound to this admin and this workspace.
    return flow.start(
        PROVIDER,
        workspace_id,
        lambda state: authorize_url(app, redirect_uri=callback_url, state=state),
    )


@bp.get("/connections/stripe/callback")
@admin_required
def callback() -> Any:
    return flow.callback(PROVIDER, "Stripe", _finish)


def _finish(answer: flow.Answer) -> Any:
    """Stripe answered with a code: the account id (its tokens are deliberately not kept)."""
    workspace = answer.workspace
    try:
        token = stripe_connect.exchange_code(current_app.config, answer.code)
    except stripe_connect.ConnectError as exc:
        return flow.problem_page("Stripe was not connected", exc.message, 400, workspace.id)
    account_id = str(token["stripe_user_id"])
    environment = "live" if token.get("livemode") else "test"
    store = _store(workspace.id)
    meta = _carried_meta(store, account_id, environment)
    meta.update(method="oauth", scope=token.get("scope"))
    # The access/refresh tokens are deliberately not kept: the platform key plus Stripe-Account
    # acts for the account, so a leaked database holds no Stripe secret of the customer.
    store.connect(
        credentials={"method": "oauth", "stripe_user_id": account_id},
        account_id=account_id,
        environment=environment,
        meta=meta,
    )
    return _after_connect(workspace, f"Stripe account {account_id} connected ({environment}).")


@bp.post("/workspaces/<int:workspace_id>/connections/stripe/webhook-secret")
@admin_required
def save_webhook_secret(workspace_id: int) -> Any:
    """The signing secret of the status sync endpoint the admin registered in their account."""
    workspace_for_admin(workspace_id)
    store = _store(workspace_id)
    row = store.connection()
    if row is None or row.status == "disconnected":
        return _fail(workspace_id, "Connect Stripe first, then add its webhook signing secret.")
    secret = (request.form.get("webhook_secret") or "").strip()
    if not secret:
        store.update_meta(**{META_WEBHOOK_SECRET: None, META_WEBHOOK_SECRET_HINT: None})
        flash("Webhook signing secret removed: Stripe events to this workspace's URL are refused.")
        return redirect(_connections_url(workspace_id))
    if not WEBHOOK_SECRET_RE.fullmatch(secret):
        return _fail(
            workspace_id,
            "That is not a webhook signing secret. In Stripe open Developers > Webhooks, choose "
            "this endpoint and reveal its signing secret: it starts with whsec_.",
        )
    store.update_meta(
        **{
            META_WEBHOOK_SECRET: secret_box(current_app.config).encrypt_json(secret),
            META_WEBHOOK_SECRET_HINT: f"whsec_…{secret[-4:]}",
        }
    )
    flash("Webhook signing secret saved: Stripe invoice events now update the drafts.", "success")
    return redirect(_connections_url(workspace_id))


@bp.post("/workspaces/<int:workspace_id>/connections/stripe/disconnect")
@admin_required
def disconnect(workspace_id: int) -> Any:

    page = kit().confirm_disconnect(workspace_for_admin(workspace_id), PROVIDER)
    if page is not None:
        return page
    store = _store(workspace_id)
    credentials = store.load()
    if credentials.get("method") == "oauth" and credentials.get("stripe_user_id"):
        try:
            stripe_connect.deauthorize(current_app.config, str(credentials["stripe_user_id"]))
        except stripe_connect.ConnectError as exc:
            flash(exc.message, "warning")
    # A pasted key is simply forgotten (revoke it in the Dashboard under Developers > API keys).
    store.disconnect()
    flash("Stripe disconnected.", "success")
    return redirect(_connections_url(workspace_id))

"""The connections page: which accounting accounts are linked, and how to (re)connect them.

The connect/callback/disconnect routes belong to each provider's module in
``connector/connections/``; this page only shows their state and links or posts to them.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template
from sqlalchemy import select

from connector import db
from connector.admin import bp
from connector.auth import admin_required, workspace_for_admin
from connector.models import Connection, ConnectionStatus
from connector.providers import DISPLAY_NAMES
from connector.trackers import TRACKER_PROVIDERS, tracker_status

EXTERNAL_PROVIDERS = ("quickbooks", "stripe")
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
    for name in ("masked_key", "key_hint", "key_last4"):
        if meta.get(name):
            value = str(meta[name])
            return value if name != "key_last4" else f"…{value}"
    return None


@bp.route("/workspaces/<int:workspace_id>/connections")
@admin_required
def connections(workspace_id: int) -> Any:
    ws = workspace_for_admin(workspace_id)
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
        tracker=tracker_card(ws.id, rows),
    )


def tracker_card(workspace_id: int, rows: dict[str, Connection]) -> dict[str, Any] | None:
    """The time tracker's card (WebWork): who is connected, polls, the last error in words."""
    if "webwork" not in TRACKER_PROVIDERS:
        return None
    connection = rows.get("webwork")
    meta = dict(connection.meta or {}) if connection else {}
    return {
        "provider": "webwork",
        "display_name": TRACKER_PROVIDERS["webwork"],
        "connection": connection,
        "status": tracker_status(workspace_id),
        "kind": meta.get("kind"),
        "masked_key": meta.get("masked_key"),
        "timesheets_seen": meta.get("timesheets_seen"),
        "rates_visible": meta.get("rates_visible"),
    }

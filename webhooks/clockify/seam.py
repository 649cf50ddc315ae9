"""What Clockify declares to the core beside its parser and normalizer (``connector.trackers``):
event kinds, the token check, contract and samples, the Connections card, account and poller."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from connector import trackers
from connector.models import Connection
from webhooks.clockify import connection as conn
from webhooks.clockify import health, poller
from webhooks.clockify.events import APPROVAL_TYPE, SCHEMA_PATH, WITHDRAWAL_TYPE
from webhooks.clockify.store import WAIT_RECONNECT, WAIT_TRACKER_DATA

FIXTURES = Path(__file__).with_name("fixtures")
POLL_JOB = "clockify_poll"

EVENT_KINDS: dict[str, trackers.EventKind] = {
    APPROVAL_TYPE: trackers.APPROVAL,
    WITHDRAWAL_TYPE: trackers.WITHDRAWAL,
}


def verify(delivery: trackers.SignedDelivery) -> str:
    """The webhook's token (``Clockify-Signature``, or ``Clockify-Signature-Token``) must be the
    one Clockify gave us for this workspace's webhook; compared in constant time. Clockify sends
    no delivery id: a hash of the body is the dedupe key (a retried delivery repeats its body;
    each status change has its own ``updatedAt``)."""
    if not conn.delivery_authentic(delivery.workspace_id, delivery.headers):
        raise trackers.SignatureRejected(
            "missing or wrong Clockify webhook token (Clockify-Signature), or Clockify is not "
            "connected for this workspace"
        )
    return "clockify:" + hashlib.sha256(delivery.body).hexdigest()


def sign(secret: str, body: bytes) -> dict[str, str]:
    """What Clockify puts on a delivery: the webhook's token, as it is (not a signature)."""
    return {"Clockify-Signature": secret, "Content-Type": "application/json"}


# Clockify signs nothing with the workspace's secret: its token comes with the webhook we register.
SIGNATURE = trackers.Signature(verify=verify, sign=sign, uses_workspace_secret=False)


def _addressed(document: dict[str, Any], tracker_workspace_id: str) -> dict[str, Any]:
    document["workspaceId"] = tracker_workspace_id
    return document


CONTRACT = trackers.Contract(
    schema_path=SCHEMA_PATH,
    samples={path.stem: path for path in sorted(FIXTURES.glob("*.json"))},
    default_sample="approval_request_status_updated__approved",
    address=_addressed,
    rows_pointer="/timesheet/rows",  # a webhook never has them: Clockify is read for the rows
)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def card_context(workspace_id: int, connection: Connection | None) -> dict[str, Any]:
    meta = dict(connection.meta or {}) if connection else {}
    return {
        "masked_key": meta.get("masked_key"),
        "workspace_name": meta.get("clockify_workspace_name"),
        "webhook_url": meta.get("webhook_url"),
        "held_at": _when(meta.get("held_at")),
        "held_reason": meta.get("held_reason"),
        "last_report": meta.get("last_report") or {},
    }


CARD = trackers.Card(template="clockify/card.html", context=card_context)

ACCOUNT = trackers.Account(
    token_label="Clockify API key",
    connect_token=conn.connect_token,
    disconnect=conn.disconnect,
    on_connect=conn.register_webhooks,
    on_disconnect=conn.remove_webhooks,
)

POLLER = trackers.Poller(
    job_kind=POLL_JOB,
    interval_setting="CLOCKIFY_POLL_SECONDS",
    poll=poller.poll,
    default_interval=900.0,
    recheck=health.recheck,
    recheck_seconds=health.RECHECK_SECONDS,
    wakes=(WAIT_RECONNECT, WAIT_TRACKER_DATA),
)

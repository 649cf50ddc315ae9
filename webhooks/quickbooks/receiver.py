"""``POST /webhooks/quickbooks``: Intuit's Invoice notifications, verified, stored, then synced.

Intuit signs each notification with the app's verifier token (``QBO_WEBHOOK_VERIFIER_TOKEN``):
``intuit-signature`` = base64(HMAC-SHA256(token, raw body)). The notification names companies
(``realmId`` / ``intuitaccountid``): they select the workspaces connected to them. It carries no
event id, so the dedupe key is the body's SHA-256 (Intuit retries resend the same body).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from flask import Blueprint, request

from webhooks.provider_receiver import (
    accept,
    configured_secrets,
    connected_workspaces,
    ignored,
    malformed,
    read_body,
    unauthorized,
)
from webhooks.quickbooks import SOURCE
from webhooks.quickbooks.events import EventError, parse_notification

bp = Blueprint("quickbooks_webhooks", __name__)


def sign(token: str, body: bytes) -> str:
    """The ``intuit-signature`` value Intuit puts on ``body``."""
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, header: str | None, tokens: list[str]) -> None:
    try:
        offered = base64.b64decode((header or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        offered = b""
    if offered:
        for token in tokens:
            expected = hmac.new(token.encode(), body, hashlib.sha256).digest()
            if hmac.compare_digest(expected, offered):
                return
    raise unauthorized("The intuit-signature header does not match the app's verifier token.")


@bp.post("/webhooks/quickbooks")
def receive() -> Any:
    tokens = configured_secrets("QBO_WEBHOOK_VERIFIER_TOKEN")
    if not tokens:
        raise unauthorized(
            "QuickBooks status sync is not configured here: set QBO_WEBHOOK_VERIFIER_TOKEN to "
            "the app's webhook verifier token."
        )
    body = read_body()
    verify(body, request.headers.get("intuit-signature"), tokens)
    try:
        changes = parse_notification(body)
    except EventError as exc:
        raise malformed(str(exc)) from None
    if not changes:
        return ignored("the notification names no invoice change")
    workspace_ids = connected_workspaces(SOURCE, [c.realm_id for c in changes])
    if not workspace_ids:
        return ignored("no workspace here is connected to these QuickBooks companies")
    operations = sorted({f"Invoice.{c.operation}" for c in changes})
    return accept(
        workspace_ids=workspace_ids,
        source=SOURCE,
        event_id="sha256:" + hashlib.sha256(body).hexdigest(),
        event_type=",".join(operations)[:100],
        body=body,
    )

"""Stripe invoice events, verified with the SDK, stored, then synced by a job.

``POST /webhooks/stripe``: one endpoint for the deployment, signed with
``STRIPE_WEBHOOK_SECRET`` (the endpoint's ``whsec_...``; several, comma-separated, while rolling
it). Connect events carry ``account``: it selects the workspaces connected to that account. An
event without ``account`` (the deployment's own Stripe account) goes to the workspaces that have
a draft with that invoice id.

``POST /webhooks/stripe/<endpoint token>``: a key-connected workspace's own endpoint, registered
in its own Stripe account; signed with the secret its admin saved on the Connections page
(encrypted in the connection's meta). Unknown token: 404.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import stripe
from flask import Blueprint, current_app, request
from sqlalchemy import select

from connector import db
from connector.crypto import SecretBox
from connector.models import Connection, ConnectionStatus, Draft, Workspace
from connector.problems import Problem
from connector.providers.stripe_connect import META_WEBHOOK_SECRET
from connector.validation import is_ascii_digits
from webhooks.provider_receiver import (
    accept,
    configured_secrets,
    connected_workspaces,
    ignored,
    malformed,
    read_body,
    unauthorized,
)
from webhooks.stripe import SOURCE
from webhooks.stripe.events import EventError, StripeEvent, parse_event

log = logging.getLogger(__name__)
bp = Blueprint("stripe_webhooks", __name__)


def signed_at(header: str | None) -> int | None:
    """The ``t=`` Unix time of a Stripe-Signature header (ASCII digits), or None."""
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and is_ascii_digits(value) and len(value) <= 12:
            return int(value)
    return None


def verify(body: bytes, header: str | None, secrets: list[str], tolerance: int) -> None:
    """Stripe's own check (``WebhookSignature.verify_header``) against each configured secret,
    and the timestamp within ``tolerance`` seconds both ways: the SDK refuses only signatures
    older than that, so one dated a year ahead would stay replayable for a year."""
    timestamp = signed_at(header)
    if timestamp is None or abs(time.time() - timestamp) > tolerance:
        raise unauthorized(
            f"The Stripe-Signature timestamp is missing or more than {tolerance} s from now."
        )
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
            return
        except stripe.SignatureVerificationError:
            continue
        except UnicodeDecodeError:  # the SDK decodes the body first; Stripe always sends UTF-8
            break
    raise unauthorized("The Stripe-Signature header does not match this endpoint's secret.")


def workspaces_for(event: StripeEvent) -> list[int]:
    if event.account:
        return connected_workspaces(SOURCE, [event.account])
    return sorted(
        set(
            db.session.scalars(
                select(Draft.workspace_id).where(
                    Draft.provider == SOURCE, Draft.provider_id == event.invoice_id
                )
            )
        )
    )


@bp.post("/webhooks/stripe")
def receive() -> Any:
    secrets = configured_secrets("STRIPE_WEBHOOK_SECRET")
    if not secrets:
        raise unauthorized(
            "Stripe status sync is not configured here: set STRIPE_WEBHOOK_SECRET to the "
            "endpoint's signing secret."
        )
    return _receive(secrets, workspaces_for)


@bp.post("/webhooks/stripe/<token>")
def receive_for_workspace(token: str) -> Any:
    """A key-connected workspace's own endpoint, registered in its own Stripe account and signed
    with the secret its admin saved on the Connections page."""
    workspace_id, secrets = _workspace_endpoint(token)
    if not secrets:
        raise unauthorized(
            "No webhook signing secret is saved for this workspace's Stripe connection: paste "
            "the endpoint's signing secret on the Connections page."
        )
    return _receive(secrets, lambda _event: [workspace_id])


def _workspace_endpoint(token: str) -> tuple[int, list[str]]:
    workspace_id = db.session.scalar(select(Workspace.id).where(Workspace.endpoint_token == token))
    if workspace_id is None:
        raise Problem(
            404, "Unknown endpoint", "No workspace has this webhook URL.", type_="unknown-endpoint"
        )
    meta = db.session.scalar(
        select(Connection.meta).where(
            Connection.workspace_id == workspace_id,
            Connection.provider == SOURCE,
            Connection.status != ConnectionStatus.DISCONNECTED,
        )
    )
    ciphertext = (meta or {}).get(META_WEBHOOK_SECRET)
    if not ciphertext:
        return workspace_id, []
    try:
        secret = SecretBox(current_app.config["TOKEN_ENCRYPTION_KEYS"]).decrypt_json(ciphertext)
    except ValueError:  # encrypted under a key that was dropped: as good as no secret
        log.error("Stripe webhook secret of workspace %s cannot be decrypted", workspace_id)
        return workspace_id, []
    return workspace_id, [str(secret)] if secret else []


def _receive(secrets: list[str], workspaces: Callable[[StripeEvent], list[int]]) -> Any:
    body = read_body()
    verify(
        body,
        request.headers.get("Stripe-Signature"),
        secrets,
        int(current_app.config["WEBHOOK_TOLERANCE_SECONDS"]),
    )
    try:
        event = parse_event(body)
    except EventError as exc:
        raise malformed(str(exc)) from None
    if not event.supported:
        return ignored(f"event type {event.type} does not change a draft", event_id=event.id)
    workspace_ids = workspaces(event)
    if not workspace_ids:
        return ignored(
            f"no workspace here is connected to {event.account or 'this invoice'}",
            event_id=event.id,
        )
    return accept(
        workspace_ids=workspace_ids,
        source=SOURCE,
        event_id=event.id,
        event_type=event.type,
        body=body,
    )

"""``POST /webhooks/stripe``: Stripe invoice events, verified with the SDK, stored, then synced.

One endpoint for the deployment, signed with ``STRIPE_WEBHOOK_SECRET`` (the endpoint's
``whsec_...``; several, comma-separated, while rolling it). Connect events carry ``account``:
it selects the workspaces connected to that account. An event without ``account`` (the
deployment's own Stripe account, e.g. a self-hosted install with a restricted key) goes to the
workspaces that have a draft with that invoice id.
"""

from __future__ import annotations

from typing import Any

import stripe
from flask import Blueprint, current_app, request
from sqlalchemy import select

from connector import db
from connector.models import Draft
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

bp = Blueprint("stripe_webhooks", __name__)


def verify(body: bytes, header: str | None, secrets: list[str], tolerance: int) -> None:
    """Stripe's own check (``WebhookSignature.verify_header``) against each configured secret."""
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
    workspace_ids = workspaces_for(event)
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

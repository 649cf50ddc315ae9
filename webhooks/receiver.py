"""The inbound receiver contract: ``POST /webhooks/<source>/<endpoint-token>``.

Outcomes, in the order they are decided (docs/events.md has the full table):
  unknown source or endpoint          404, nothing stored
  forged, unsigned or stale           401, nothing stored (checked before anything is parsed)
  body over the size cap              413, nothing stored
  authentic duplicate webhook-id      200, no second job
  authentic but not JSON              400 problem+json, raw delivery kept as "invalid"
  authentic JSON breaking the schema  422 problem+json naming the field, delivery kept
  data.workspace_id not this one      422, delivery kept
  well-formed but unsupported type    200, delivery kept as "ignored", logged
  automatic invoicing off             202, delivery kept as "skipped", no job
  authentic and new                   202, delivery + job in ONE transaction, then the worker
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from connector import db, worker
from connector.connections.store import secret_box
from connector.models import Delivery, DeliveryStatus, Workspace
from connector.problems import Problem
from connector.workspaces import signing_secrets
from webhooks.inbox import find_delivery, kept_headers, new_job
from webhooks.signing import SignatureError, verify
from webhooks.webwork.events import EventError, parse_event
from webhooks.webwork.normalize import normalize_timesheet

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

SOURCES = frozenset({"webwork"})


def _workspace(source: str, token: str) -> Workspace:
    if source not in SOURCES:
        raise Problem(
            404, "Unknown source", f"No receiver for source {source!r}.", type_="unknown-endpoint"
        )
    workspace = db.session.scalars(
        select(Workspace).where(
            Workspace.endpoint_token == token, Workspace.tracker_source == source
        )
    ).one_or_none()
    if workspace is None:
        raise Problem(
            404, "Unknown endpoint", "No workspace has this webhook URL.", type_="unknown-endpoint"
        )
    return workspace


def _read_body() -> bytes:
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge:
        limit = current_app.config["WEBHOOK_MAX_BODY_BYTES"]
        raise Problem(
            413, "Event too large", f"Events are limited to {limit} bytes.", type_="too-large"
        ) from None


@bp.post("/webhooks/<source>/<token>")
def receive(source: str, token: str) -> Any:
    workspace = _workspace(source, token)
    limit = current_app.config["WEBHOOK_MAX_BODY_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise Problem(
            413, "Event too large", f"Events are limited to {limit} bytes.", type_="too-large"
        )
    body = _read_body()

    try:
        webhook_id = verify(
            signing_secrets(secret_box(), workspace),
            request.headers,
            body,
            tolerance_seconds=current_app.config["WEBHOOK_TOLERANCE_SECONDS"],
        )
    except SignatureError as exc:
        log.warning("rejected webhook for workspace %s: %s", workspace.id, exc)
        raise Problem(401, "Invalid signature", str(exc), type_="invalid-signature") from None

    existing = find_delivery(db.session, workspace.id, webhook_id)
    if existing is not None:
        return jsonify(status="duplicate", delivery_id=existing.id), 200

    delivery = Delivery(
        workspace_id=workspace.id,
        source=source,
        webhook_id=webhook_id,
        headers=kept_headers(request.headers),
        body=body,
    )
    problem: Problem | None = None
    job = None
    try:
        event = parse_event(body)
        if event.type == "timesheet.approved" and not event.is_thin:
            normalize_timesheet(event.timesheet)  # dates and periods: tell the sender now
    except EventError as exc:
        delivery.status = DeliveryStatus.INVALID
        delivery.error = str(exc)
        title = "Malformed event" if exc.status == 400 else "Event breaks the contract"
        problem = Problem(
            exc.status, title, exc.message, type_="invalid-event", field=exc.field or None
        )
    else:
        delivery.event_type = event.type
        delivery.event_timestamp = event.timestamp
        delivery.timesheet_id = event.timesheet_id[:255]
        if event.workspace_id != workspace.tracker_workspace_id:
            delivery.status = DeliveryStatus.INVALID
            delivery.error = (
                f"data.workspace_id {event.workspace_id!r} is not this endpoint's workspace"
            )
            problem = Problem(
                422,
                "Wrong workspace",
                delivery.error,
                type_="wrong-workspace",
                field="/data/workspace_id",
            )
        elif not event.supported:
            delivery.status = DeliveryStatus.IGNORED
            log.info("ignored unsupported event type %r (workspace %s)", event.type, workspace.id)
        elif not workspace.auto_invoicing:
            delivery.status = DeliveryStatus.SKIPPED
            delivery.error = "automatic invoicing is off for this workspace"
        else:
            delivery.status = DeliveryStatus.ACCEPTED

    db.session.add(delivery)
    try:
        db.session.flush()
        if delivery.status == DeliveryStatus.ACCEPTED:
            job = new_job(workspace.id, "process_delivery", delivery.id)
            db.session.add(job)
        db.session.commit()  # delivery and job together, or neither
    except IntegrityError:
        # The same webhook-id raced us from another request: that one owns the job.
        db.session.rollback()
        existing = find_delivery(db.session, workspace.id, webhook_id)
        return jsonify(status="duplicate", delivery_id=existing.id if existing else None), 200

    if problem is not None:
        problem.extra["delivery_id"] = delivery.id
        raise problem
    if job is not None:
        worker.enqueue(job.id)
        return jsonify(status="accepted", delivery_id=delivery.id, job_id=job.id), 202
    if delivery.status == DeliveryStatus.SKIPPED:
        return jsonify(status="skipped", delivery_id=delivery.id, detail=delivery.error), 202
    return jsonify(status="ignored", delivery_id=delivery.id, event_type=delivery.event_type), 200

"""The inbound receiver contract: ``POST /webhooks/<source>/<endpoint-token>``.

Outcomes, in the order they are decided (docs/events.md has the full table):
  unknown source or endpoint          404, nothing stored
  forged, unsigned or stale           401, nothing stored (checked before anything is parsed,
                                      by the source's own Signature: connector.trackers)
  body over the size cap              413 + Connection: close, body drained, nothing stored
  authentic duplicate webhook-id      200, no second job
  authentic but not JSON              400 problem+json, raw delivery kept as "invalid"
  authentic JSON breaking the schema  422 problem+json naming the field, delivery kept
  data.workspace_id not this one      422, delivery kept
  unsupported type, valid envelope    200, delivery kept as "ignored", logged (data unchecked)
  automatic invoicing off             202, delivery kept as "skipped", no job
  authentic and new                   202, delivery + job in ONE transaction, then the worker
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from connector import db, observability, trackers, worker
from connector.crypto import SecretBox
from connector.models import Delivery, DeliveryStatus, Workspace, utcnow
from connector.problems import Problem
from webhooks.inbox import find_delivery, insert_job, kept_headers, storable_text
from webhooks.request_body import read_capped_body

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@dataclass(frozen=True)
class Endpoint:
    workspace_id: int
    tracker_workspace_id: str
    auto_invoicing: bool
    secrets: tuple[str, ...]


@lru_cache(maxsize=1024)
def _decrypt_secrets(keys: tuple[str, ...], ciphertext: str) -> tuple[str, ...]:
    # Keyed by the ciphertext itself: a rotated secret is a new ciphertext, so this cache can
    # never serve a stale secret; it only spares a Fernet decryption per request.
    return tuple(SecretBox(keys).decrypt_json(ciphertext) or ())


# Statements are built once: on the hot path, building and hashing a statement per request
# costs more than running it.
_ENDPOINT_QUERY = select(
    Workspace.id,
    Workspace.tracker_workspace_id,
    Workspace.auto_invoicing,
    Workspace.signing_secrets_encrypted,
).where(
    Workspace.endpoint_token == bindparam("token"), Workspace.tracker_source == bindparam("source")
)


def _endpoint(source: str, token: str) -> Endpoint:
    if not trackers.is_source(source):  # the sources registered when the app was built
        raise Problem(
            404, "Unknown source", f"No receiver for source {source!r}.", type_="unknown-endpoint"
        )
    row = db.session.connection().execute(_ENDPOINT_QUERY, {"token": token, "source": source})
    found = row.one_or_none()
    if found is None:
        raise Problem(
            404, "Unknown endpoint", "No workspace has this webhook URL.", type_="unknown-endpoint"
        )
    keys = tuple(current_app.config["TOKEN_ENCRYPTION_KEYS"])
    return Endpoint(found[0], found[1], bool(found[2]), _decrypt_secrets(keys, found[3]))


@lru_cache(maxsize=2)
def _insert_delivery_statement(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = Delivery.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["workspace_id", "webhook_id"])
        .returning(table.c.id)
    )


def _insert_delivery(values: dict[str, Any]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING: None when this webhook-id was stored already."""
    conn = db.session.connection()
    stmt = _insert_delivery_statement(conn.dialect.name)
    return conn.execute(stmt, values).scalar_one_or_none()


def _duplicate(workspace_id: int, webhook_id: str) -> Any:
    existing = find_delivery(db.session, workspace_id, webhook_id)
    return jsonify(status="duplicate", delivery_id=existing.id if existing else None), 200


def _authentic(source: str, endpoint: Endpoint, body: bytes) -> str:
    """The delivery's id, once its source's signature check passed (401 otherwise)."""
    signature = trackers.get_source(source).signature
    try:
        if signature is None:
            raise trackers.SignatureRejected("this source accepts no webhooks")
        webhook_id = signature.verify(
            trackers.SignedDelivery(
                workspace_id=endpoint.workspace_id,
                tracker_workspace_id=endpoint.tracker_workspace_id,
                headers=request.headers,
                body=body,
                signing_secrets=endpoint.secrets,
                tolerance_seconds=current_app.config["WEBHOOK_TOLERANCE_SECONDS"],
            )
        )
    except trackers.SignatureRejected as exc:
        log.warning("rejected webhook for workspace %s: %s", endpoint.workspace_id, exc)
        observability.DELIVERIES.labels("refused").inc()
        raise Problem(401, "Invalid signature", str(exc), type_="invalid-signature") from None
    return webhook_id


@bp.post("/webhooks/<source>/<token>")
def receive(source: str, token: str) -> Any:
    endpoint = _endpoint(source, token)
    body = read_capped_body()
    webhook_id = _authentic(source, endpoint, body)

    values: dict[str, Any] = {
        "workspace_id": endpoint.workspace_id,
        "source": source,
        "webhook_id": webhook_id,
        "headers": kept_headers(request.headers),
        "body": body,
        "received_at": utcnow(),
        "status": DeliveryStatus.ACCEPTED,
        "error": None,
        "event_type": None,
        "event_timestamp": None,
        "timesheet_id": None,
        "replay_of_id": None,
    }
    problem: Problem | None = None
    try:
        event = trackers.parse_event(source, body)
        kind = trackers.kind_of(source, event.type)
        if kind == trackers.APPROVAL and not event.is_thin:
            # dates and periods: tell the sender now
            trackers.normalize_timesheet(source, event.timesheet)
    except trackers.EventError as exc:
        # The message may quote the sender's text; the delivery must be stored whatever it holds.
        values.update(status=DeliveryStatus.INVALID, error=storable_text(str(exc)))
        title = "Malformed event" if exc.status == 400 else "Event breaks the contract"
        problem = Problem(
            exc.status, title, exc.message, type_="invalid-event", field=exc.field or None
        )
    else:
        values.update(
            event_type=event.type,
            event_timestamp=event.timestamp,
            timesheet_id=event.timesheet_id if kind is not None else None,
        )
        if event.workspace_id != endpoint.tracker_workspace_id:
            error = f"data.workspace_id {event.workspace_id!r} is not this endpoint's workspace"
            values.update(status=DeliveryStatus.INVALID, error=error)
            problem = Problem(
                422, "Wrong workspace", error, type_="wrong-workspace", field="/data/workspace_id"
            )
        elif kind is None:
            values["status"] = DeliveryStatus.IGNORED
            log.info(
                "ignored unsupported event type %r (workspace %s)",
                event.type,
                endpoint.workspace_id,
            )
        elif not endpoint.auto_invoicing:
            values.update(
                status=DeliveryStatus.SKIPPED, error="automatic invoicing is off for this workspace"
            )
        else:
            values["status"] = DeliveryStatus.ACCEPTED

    job_id: int | None = None
    try:
        delivery_id = _insert_delivery(values)
        if delivery_id is None:
            db.session.rollback()
            observability.DELIVERIES.labels("duplicate").inc()
            return _duplicate(endpoint.workspace_id, webhook_id)
        if values["status"] == DeliveryStatus.ACCEPTED:
            job_id = insert_job(db.session, endpoint.workspace_id, "process_delivery", delivery_id)
        db.session.commit()  # delivery and job together, or neither
    except IntegrityError:
        db.session.rollback()  # a concurrent request with the same webhook-id won the race
        observability.DELIVERIES.labels("duplicate").inc()
        return _duplicate(endpoint.workspace_id, webhook_id)

    observability.DELIVERIES.labels(str(values["status"])).inc()

    if problem is not None:
        problem.extra["delivery_id"] = delivery_id
        raise problem
    if job_id is not None:
        worker.job_committed(job_id)
        return jsonify(status="accepted", delivery_id=delivery_id, job_id=job_id), 202
    if values["status"] == DeliveryStatus.SKIPPED:
        return jsonify(status="skipped", delivery_id=delivery_id, detail=values["error"]), 202
    return jsonify(status="ignored", delivery_id=delivery_id, event_type=values["event_type"]), 200

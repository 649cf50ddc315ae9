"""Store first, process later: deliveries and their jobs are written in one transaction."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connector import db, worker
from connector.models import Delivery, DeliveryStatus, Job, JobState, utcnow

# NUL and unpaired surrogates: neither PostgreSQL text nor JSON can store them as they are.
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with NUL and unpaired surrogates escaped, so it can be stored (error messages)."""
    return UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


KEPT_HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "user-agent",
    "content-length",
)


def kept_headers(headers: Any) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


def find_delivery(s: Session, workspace_id: int, webhook_id: str) -> Delivery | None:
    return s.scalars(
        select(Delivery).where(
            Delivery.workspace_id == workspace_id, Delivery.webhook_id == webhook_id
        )
    ).one_or_none()


def new_job(workspace_id: int, kind: str, delivery_id: int | None = None, **payload: Any) -> Job:
    return worker.new_job(workspace_id, kind, delivery_id, **payload)


_INSERT_JOB = insert(Job.__table__).returning(Job.__table__.c.id)


def insert_job(
    s: Session, workspace_id: int, kind: str, delivery_id: int | None = None, **payload: Any
) -> int:
    """Insert a pending job row in the caller's transaction (a prebuilt Core insert: hot path)."""
    now = utcnow()
    params = {
        "workspace_id": workspace_id,
        "delivery_id": delivery_id,
        "kind": kind,
        "payload": payload,
        "state": JobState.PENDING,
        "attempts": 0,
        "max_attempts": worker.settings().max_attempts,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    return int(s.connection().execute(_INSERT_JOB, params).scalar_one())


# Inbound provider events (status sync) are stored as deliveries too; their jobs differ.
PROVIDER_EVENT_JOB = "sync_provider_event"
PROVIDER_SOURCES = frozenset({"stripe", "quickbooks"})
PROVIDER_KEPT_HEADERS = ("stripe-signature", "intuit-signature", "content-type", "user-agent")


def store_provider_event(
    s: Session,
    *,
    workspace_ids: Iterable[int],
    source: str,
    event_id: str,
    event_type: str | None,
    headers: Any,
    body: bytes,
) -> list[tuple[int, int]]:
    """Store first, process later: one delivery + job per workspace the event concerns.

    INSERT ... ON CONFLICT DO NOTHING on (workspace, event id): a redelivered event stores and
    queues nothing. Returns (delivery id, job id) of the new rows; the caller commits.
    """
    table = Delivery.__table__
    insert_ = pg_insert if s.connection().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert_(table)
        .on_conflict_do_nothing(index_elements=["workspace_id", "webhook_id"])
        .returning(table.c.id)
    )
    kept = {name: headers[name] for name in PROVIDER_KEPT_HEADERS if name in headers}
    stored = []
    for workspace_id in sorted(set(workspace_ids)):
        delivery_id = (
            s.connection()
            .execute(
                statement,
                {
                    "workspace_id": workspace_id,
                    "source": source,
                    "webhook_id": event_id,
                    "event_type": event_type,
                    "headers": kept,
                    "body": body,
                    "received_at": utcnow(),
                    "status": DeliveryStatus.ACCEPTED,
                },
            )
            .scalar_one_or_none()
        )
        if delivery_id is not None:
            stored.append(
                (delivery_id, insert_job(s, workspace_id, PROVIDER_EVENT_JOB, delivery_id))
            )
    return stored


def replay_delivery(workspace_id: int, delivery_id: int) -> int | None:
    """Queue a stored delivery again (after a fix); the idempotency keys prevent duplicates.

    Returns the new job id, or None when the delivery does not belong to the workspace.
    """
    with db.session_scope() as s:
        delivery = s.get(Delivery, delivery_id)
        if delivery is None or delivery.workspace_id != workspace_id:
            return None
        kind = PROVIDER_EVENT_JOB if delivery.source in PROVIDER_SOURCES else "process_delivery"
        job = new_job(workspace_id, kind, delivery.id, replay=True)
        s.add(job)
        if delivery.status in (
            DeliveryStatus.FAILED,
            DeliveryStatus.SKIPPED,
            DeliveryStatus.PROCESSED,
        ):
            delivery.status = DeliveryStatus.ACCEPTED
            delivery.error = None
        s.flush()
        job_id = job.id
    worker.job_committed(job_id)
    return job_id

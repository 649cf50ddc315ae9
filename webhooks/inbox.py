"""Store first, process later: deliveries and their jobs are written in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector import db, jobs, worker
from connector.models import Delivery, DeliveryStatus, Job, JobState, utcnow

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
    return jobs.new_job(workspace_id, kind, delivery_id, **payload)


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
        "max_attempts": jobs.max_attempts(),
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    return int(s.connection().execute(_INSERT_JOB, params).scalar_one())


def replay_delivery(workspace_id: int, delivery_id: int) -> int | None:
    """Queue a stored delivery again (after a fix); the idempotency keys prevent duplicates.

    Returns the new job id, or None when the delivery does not belong to the workspace.
    """
    with db.session_scope() as s:
        delivery = s.get(Delivery, delivery_id)
        if delivery is None or delivery.workspace_id != workspace_id:
            return None
        job = new_job(workspace_id, "process_delivery", delivery.id, replay=True)
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
    worker.enqueue(job_id)
    return job_id

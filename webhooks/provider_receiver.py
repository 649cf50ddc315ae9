"""What the provider receivers (``connector/providers/<name>/web/receiver.py``) share: the app
hands it to them as a WebKit, so a provider folder never imports this package.

Outcomes, in the order they are decided (docs/stripe.md and docs/quickbooks.md):
  unknown workspace endpoint token    404 (``/webhooks/stripe/<token>`` only)
  no signing secret configured        401, nothing stored
  forged, unsigned or stale           401, nothing stored (checked on the raw body first)
  body over the size cap              413, nothing stored
  authentic but not an event          400 problem+json, nothing stored
  event type not about invoices       200 "ignored", nothing stored
  no workspace connected to it        200 "ignored", nothing stored
  authentic duplicate event           200 "duplicate", nothing queued twice
  authentic and new                   200 "accepted": delivery + job per workspace in ONE
                                      transaction; the worker reads the invoice later
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, jsonify, request
from sqlalchemy import select

from connector import db, worker
from connector.models import Connection, ConnectionStatus
from connector.problems import Problem
from webhooks.inbox import store_provider_event
from webhooks.request_body import read_capped_body


def configured_secrets(name: str) -> list[str]:
    """A comma-separated secret setting: several are valid at once while one is rotated."""
    raw = str(current_app.config.get(name) or "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def read_body() -> bytes:
    """The raw body; 413 above WEBHOOK_MAX_BODY_BYTES, chunked or not (never cut short)."""
    return read_capped_body()


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Invalid signature", detail, type_="invalid-signature")


def malformed(detail: str) -> Problem:
    return Problem(400, "Malformed event", detail, type_="invalid-event")


def connected_workspaces(provider: str, account_ids: Iterable[str]) -> list[int]:
    """Workspaces whose connection to ``provider`` is one of these accounts (realm / acct_)."""
    wanted = sorted(set(account_ids))
    if not wanted:
        return []
    return sorted(
        set(
            db.session.scalars(
                select(Connection.workspace_id).where(
                    Connection.provider == provider,
                    Connection.account_id.in_(wanted),
                    Connection.status != ConnectionStatus.DISCONNECTED,
                )
            )
        )
    )


def ignored(detail: str, **extra: Any) -> Any:
    return jsonify(status="ignored", detail=detail, **extra), 200


def accept(
    *,
    workspace_ids: list[int],
    source: str,
    event_id: str,
    event_type: str | None,
    body: bytes,
) -> Any:
    """Store the raw event for every workspace concerned and queue its job (one transaction)."""
    stored = store_provider_event(
        db.session,
        workspace_ids=workspace_ids,
        source=source,
        event_id=event_id,
        event_type=event_type,
        headers=request.headers,
        body=body,
    )
    db.session.commit()
    if not stored:
        return jsonify(status="duplicate", event_id=event_id), 200
    for _delivery_id, job_id in stored:
        worker.job_committed(job_id)
    return (
        jsonify(
            status="accepted",
            event_id=event_id,
            delivery_ids=[delivery_id for delivery_id, _ in stored],
        ),
        200,
    )


# --- the receivers in the OpenAPI document: each provider registers its own (setup) ----------
OPENAPI_PATHS: dict[str, Any] = {}
OPENAPI_SCHEMAS: dict[str, Any] = {}


def register_openapi(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """A provider's receiver (set up from the registry) describes itself in the document."""
    OPENAPI_PATHS.update(paths)
    OPENAPI_SCHEMAS.update(schemas or {})

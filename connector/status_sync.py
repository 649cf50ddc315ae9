"""Status sync: what finance did with each invoice at the provider (sent, paid, voided, deleted).

Two ways in, one way to record:

* ``sync_provider_event`` jobs: a verified Stripe event or QuickBooks notification was stored as
  a delivery (``webhooks/stripe``, ``webhooks/quickbooks``); the job reads the invoices it names
  from the provider (events can arrive late or out of order, the invoice itself cannot) and
  records their state.
* ``reconcile_provider_status`` jobs: webhooks get lost, so every invoice whose state can still
  change is read again, in batches, through the providers' rate-limited HTTP layers. A huey
  periodic task queues one per workspace every ``STATUS_RECONCILE_MINUTES``.

``record_states`` writes ``Invoice.provider_status`` (mirrored on the approvals' Draft rows)
only when the read is newer than what is stored, so a slow job cannot overwrite a fresher state;
finance sending an invoice closes it to new approvals (``pipeline.invoices``). Only invoices of
the books a provider reaches now are read: an id of other books names another invoice there.
Withdrawals consult ``provider_status`` (see ``pipeline.withdrawing``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from huey import crontab
from sqlalchemy import or_, select

from connector import books, db, locks, worker
from connector.models import (
    Connection,
    Delivery,
    DeliveryStatus,
    Invoice,
    Job,
    JobState,
    utcnow,
)
from connector.pipeline import invoices
from connector.providers import build_provider
from connector.providers.base import (
    SETTLED_PROVIDER_STATUSES,
    InvoiceState,
    ReconnectNeeded,
    Rejected,
)

log = logging.getLogger(__name__)

RECONCILE_JOB = "reconcile_provider_status"
EVENT_JOB = "sync_provider_event"
RECONCILE_BATCH = 100  # drafts read per provider call batch (one QuickBooks query)
RECONCILE_MAX_PER_RUN = 1000  # drafts one reconcile job reads; the next run continues
DEFAULT_RECONCILE_MINUTES = 60


# --- recording -----------------------------------------------------------------------------
def record_states(
    workspace_id: int, provider: str, states: Mapping[str, InvoiceState], read_at: datetime
) -> int:
    """Store each invoice's state on its invoice record (and its approvals' rows), unless a newer
    read is already stored. Only invoices of the books the provider reaches now: the same id in
    other books is another invoice. Returns the invoices updated."""
    changed = 0
    with db.session_scope() as s:
        books_key = books.current_key(s, workspace_id, provider)
        for ref, state in states.items():
            for invoice in s.scalars(
                select(Invoice).where(
                    Invoice.workspace_id == workspace_id,
                    Invoice.provider == provider,
                    Invoice.books == books_key,
                    Invoice.provider_id == ref,
                    or_(
                        Invoice.provider_status_at.is_(None),
                        Invoice.provider_status_at <= read_at,
                    ),
                )
            ):
                invoices.record_provider_status(s, invoice, state.status, read_at)
                changed += 1
    return changed


def sync_invoices(
    workspace_id: int, provider_name: str, refs: Iterable[str], config: Mapping[str, Any]
) -> int:
    """Read these invoices from the provider and record their states; returns invoices updated.

    ``config`` is the app's configuration, for the provider's credentials."""
    refs = sorted(set(refs))
    if not refs:
        return 0
    provider = build_provider(workspace_id, provider_name, config)
    updated = 0
    for start in range(0, len(refs), RECONCILE_BATCH):
        chunk = refs[start : start + RECONCILE_BATCH]
        read_at = utcnow()  # before the read: a state read later always wins
        states = provider.fetch_invoice_states(chunk)
        updated += record_states(workspace_id, provider_name, states, read_at)
        worker.heartbeat()
    return updated


# --- events from the providers -------------------------------------------------------------
# provider name -> fn(raw event body, the connection's account id or None) -> the invoice ids the
# event names for that account. Registered by the inbound packages (webhooks/<provider>/setup.py)
# when the app is built, so the core never imports them.
EVENT_READERS: dict[str, Callable[[bytes, str | None], list[str]]] = {}


def register_event_reader(provider: str, read: Callable[[bytes, str | None], list[str]]) -> None:
    EVENT_READERS[provider] = read


def _event_refs(delivery: Delivery, account_id: str | None) -> list[str]:
    """The invoice ids a stored provider event names for this workspace's connection."""
    read_refs = EVENT_READERS.get(delivery.source)
    if read_refs is not None:
        return read_refs(delivery.body, account_id)
    raise Rejected(f"delivery {delivery.id} is not a provider event ({delivery.source})")


@worker.handler(EVENT_JOB)
def sync_provider_event(job: Job, config: Mapping[str, Any]) -> None:
    with db.new_session() as s:
        delivery = s.get(Delivery, job.delivery_id)
        if delivery is None:
            raise Rejected(f"delivery {job.delivery_id} no longer exists")
        connection = s.scalars(
            select(Connection).where(
                Connection.workspace_id == delivery.workspace_id,
                Connection.provider == delivery.source,
            )
        ).one_or_none()
        s.expunge(delivery)
    try:
        refs = _event_refs(delivery, connection.account_id if connection else None)
    except ValueError as exc:  # stored by an older version, or replayed after a change
        _finish_delivery(delivery.id, DeliveryStatus.INVALID, str(exc))
        return
    with db.new_session() as s:
        # Only our own invoices: an event about any other invoice of the account costs no call.
        ours = sorted(
            set(
                s.scalars(
                    select(Invoice.provider_id).where(
                        Invoice.workspace_id == delivery.workspace_id,
                        Invoice.provider == delivery.source,
                        Invoice.books
                        == books.current_key(s, delivery.workspace_id, delivery.source),
                        Invoice.provider_id.in_(refs),
                    )
                )
            )
        )
    note = None
    if ours:
        sync_invoices(delivery.workspace_id, delivery.source, [r for r in ours if r], config)
    else:
        note = "no draft of this workspace is concerned"
    _finish_delivery(delivery.id, DeliveryStatus.PROCESSED, note)


def _finish_delivery(delivery_id: int, status: DeliveryStatus, note: str | None) -> None:
    with db.session_scope() as s:
        delivery = s.get(Delivery, delivery_id)
        if delivery is not None:
            delivery.status = status
            delivery.error = note


# --- reconcile (webhooks get lost) ---------------------------------------------------------
def open_drafts(workspace_id: int, limit: int = RECONCILE_MAX_PER_RUN) -> list[tuple[str, str]]:
    """(provider, invoice id) of the invoices whose provider state can still change, the ones
    read longest ago (or never) first; only those of the books each provider reaches now."""
    with db.new_session() as s:
        reachable = [
            (Invoice.provider == name) & (Invoice.books == key)
            for name in set(
                s.scalars(select(Invoice.provider).where(Invoice.workspace_id == workspace_id))
            )
            if (key := books.current_key(s, workspace_id, name)) is not None
        ]
        if not reachable:
            return []
        rows = s.execute(
            select(Invoice.provider, Invoice.provider_id)
            .where(
                Invoice.workspace_id == workspace_id,
                Invoice.provider_id.is_not(None),
                or_(*reachable),
                or_(
                    Invoice.provider_status.is_(None),
                    Invoice.provider_status.notin_([s.value for s in SETTLED_PROVIDER_STATUSES]),
                ),
            )
            .order_by(
                Invoice.provider_status_at.is_not(None), Invoice.provider_status_at, Invoice.id
            )
            .limit(limit)
        ).all()
    return [(str(provider), str(ref)) for provider, ref in rows]


def reconcile_workspace(workspace_id: int, config: Mapping[str, Any]) -> dict[str, int]:
    """Read every open draft of the workspace again; returns drafts read per provider."""
    by_provider: dict[str, list[str]] = {}
    for provider, ref in open_drafts(workspace_id):
        by_provider.setdefault(provider, []).append(ref)
    read = {}
    for provider, refs in by_provider.items():
        try:
            sync_invoices(workspace_id, provider, refs, config)
        except ReconnectNeeded as exc:
            # Best effort: a provider waiting for a reconnect is read again on a later run; the
            # console already asks the admin to reconnect.
            log.info("status reconcile of workspace %s skips %s: %s", workspace_id, provider, exc)
            continue
        read[provider] = len(refs)
    return read


@worker.handler(RECONCILE_JOB)
def reconcile_provider_status(job: Job, config: Mapping[str, Any]) -> None:
    reconcile_workspace(job.workspace_id, config)


def queue_reconcile(workspace_id: int) -> tuple[int, bool]:
    """Queue a reconcile job unless one is already waiting or running.

    Returns (job id, True) for a new job, (the queued job's id, False) otherwise.
    """
    with db.session_scope() as s:
        busy = s.scalars(
            select(Job.id).where(
                Job.workspace_id == workspace_id,
                Job.kind == RECONCILE_JOB,
                Job.state.in_([JobState.PENDING, JobState.RUNNING]),
            )
        ).first()
        if busy is not None:
            return busy, False
        job = worker.new_job(workspace_id, RECONCILE_JOB)
        s.add(job)
        s.flush()
        job_id = job.id
    worker.job_committed(job_id)
    return job_id, True


def _due_workspaces(interval: timedelta) -> list[int]:
    """Workspaces with open drafts at a connected provider (or the ledger) whose last reconcile
    was queued more than ``interval`` ago."""
    since = utcnow() - interval
    with db.new_session() as s:
        candidates = set(
            s.scalars(
                select(Invoice.workspace_id)
                .distinct()
                .where(
                    Invoice.provider_id.is_not(None),
                    or_(
                        Invoice.provider_status.is_(None),
                        Invoice.provider_status.notin_(
                            [st.value for st in SETTLED_PROVIDER_STATUSES]
                        ),
                    ),
                )
            )
        )
        if not candidates:
            return []
        recent = set(
            s.scalars(
                select(Job.workspace_id).where(
                    Job.kind == RECONCILE_JOB,
                    Job.workspace_id.in_(candidates),
                    Job.created_at > since,
                )
            )
        )
    return sorted(candidates - recent)


def schedule_reconciles(interval_minutes: float) -> list[int]:
    """Queue the reconcile jobs that are due (one scheduler at a time across processes)."""
    if interval_minutes <= 0:
        return []
    queued = []
    try:
        with locks.advisory_lock("status-sync:scheduler", ttl=120.0, timeout=0.0):
            for workspace_id in _due_workspaces(timedelta(minutes=interval_minutes)):
                job_id, created = queue_reconcile(workspace_id)
                if created:
                    queued.append(job_id)
    except locks.LockTimeout:
        return []  # another worker process is scheduling right now
    return queued


def reconcile_minutes(config: Mapping[str, Any]) -> float:
    """``STATUS_RECONCILE_MINUTES``: unset means the default, ``0`` switches the reconcile off."""
    value = config.get("STATUS_RECONCILE_MINUTES")
    return float(DEFAULT_RECONCILE_MINUTES if value in (None, "") else value)


@worker.periodic(crontab(minute="*/5"), name="schedule_status_reconciles")
def _schedule_status_reconciles(config: Mapping[str, Any]) -> None:
    # Every 5 minutes each consumer looks; the interval itself is STATUS_RECONCILE_MINUTES.
    queued = schedule_reconciles(reconcile_minutes(config))
    if queued:
        log.info("queued %d provider status reconcile job(s)", len(queued))


# --- operator CLI: ``flask --app connector provider-status reconcile [WORKSPACE_ID ...]`` -------
provider_status_cli = AppGroup("provider-status", help="Sync drafts' state from the providers.")


@provider_status_cli.command("reconcile")
@click.argument("workspace_ids", nargs=-1, type=int)
def reconcile_command(workspace_ids: tuple[int, ...]) -> None:
    """Read the open drafts of these workspaces (default: every workspace that has some) again
    from their providers, now, in this process."""
    targets = list(workspace_ids) or _due_workspaces(timedelta(0))
    for workspace_id in targets:
        read = reconcile_workspace(workspace_id, current_app.config)
        summary = ", ".join(f"{n} at {p}" for p, n in read.items()) or "nothing to read"
        click.echo(f"workspace {workspace_id}: {summary}")

"""One job from a stored delivery to recorded drafts.

    delivery -> event -> normalized timesheet -> billing (pure) -> one Draft row per customer
             -> provider.create_draft(key) for each -> recorded result or hold

Exactly-once rules kept here:
  * a Draft row and its deterministic key are committed BEFORE the provider is called;
  * ``attempts`` is incremented (and committed) before each call, so after a crash or an unknown
    outcome the next run looks the invoice up by key (``find_draft``) before creating;
  * the provider id is stored only after the provider confirmed the draft;
  * all work on one timesheet runs under a cross-process advisory lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connector import billing, db, observability, trackers, worker
from connector.config import current_config
from connector.jobs import new_job
from connector.locks import LockTimeout, advisory_lock
from connector.models import (
    HOLD_STATUSES,
    CustomerMapping,
    CustomerSettings,
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    Job,
    PeriodInvoice,
    PeriodInvoiceStatus,
    Rate,
    Timesheet,
    TimesheetStatus,
    TrackerEntity,
    TrackerRate,
    Workspace,
    utcnow,
)
from connector.money import format_money
from connector.providers import build_provider
from connector.providers.base import (
    HANDS_OFF_PROVIDER_STATUSES,
    AccountingProvider,
    CreatedDraft,
    CurrencyMismatch,
    DraftInvoice,
    DraftLine,
    DraftState,
    NotADraft,
    ProviderStatus,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
    RetryLater,
)
from connector.rates import to_entry
from connector.settings import WorkspaceSettings
from connector.trackers import EventError
from connector.trackers import TrackerEvent as Event

log = logging.getLogger(__name__)

# Draft rows the pipeline still has to push to the provider.
TO_PUSH = frozenset({DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})
# Outcomes where the provider said no: nothing was created under the row's key.
KNOWN_NOT_CREATED = frozenset({DraftStatus.FAILED, DraftStatus.CURRENCY_MISMATCH})
# Draft rows that exist (or may exist) at the provider.
AT_PROVIDER = frozenset({DraftStatus.DRAFTED, DraftStatus.PENDING, DraftStatus.RECONNECT_NEEDED})


def _config() -> Mapping[str, Any]:
    return current_config()


# --- inputs for the billing engine ---------------------------------------------------------------
def load_mappings(s: Session, workspace: Workspace) -> billing.Mappings:
    settings = WorkspaceSettings.from_dict(workspace.settings)
    overrides = {
        cs.customer_id: cs
        for cs in s.scalars(
            select(CustomerSettings).where(CustomerSettings.workspace_id == workspace.id)
        )
    }
    projects: dict[str, billing.Customer] = {}
    clients: dict[str, billing.Customer] = {}
    for m in s.scalars(select(CustomerMapping).where(CustomerMapping.workspace_id == workspace.id)):
        cs = overrides.get(m.customer_id)
        customer = billing.Customer(
            id=m.customer_id,
            name=m.customer_name,
            currency=(m.customer_currency or settings.default_currency).upper(),
            grouping=cs.grouping if cs else None,
            billing_increment=cs.billing_increment if cs else None,
        )
        (projects if m.kind == "project" else clients)[m.tracker_id] = customer
    return billing.Mappings(projects=projects, clients=clients)


def load_rates(s: Session, workspace_id: int) -> billing.RateTable:
    admin = [to_entry(r) for r in s.scalars(select(Rate).where(Rate.workspace_id == workspace_id))]
    # Rates read from the tracker (e.g. WebWork contracts) sit beside the admin's own; where
    # both give a rate for the same scope from the same day, the admin's wins.
    taken = {_rate_identity(e) for e in admin}
    tracker = [
        e
        for e in (
            billing.RateEntry(
                amount=r.amount,
                currency=r.currency,
                effective_from=r.effective_from,
                member_id=r.member_id,
                project_id=r.project_id,
                contract_id=r.contract_id,
            )
            for r in s.scalars(select(TrackerRate).where(TrackerRate.workspace_id == workspace_id))
        )
        if _rate_identity(e) not in taken
    ]
    return billing.RateTable(entries=tuple(admin + tracker))


def _rate_identity(entry: billing.RateEntry) -> tuple[Any, ...]:
    return (
        entry.contract_id,
        entry.member_id,
        entry.project_id,
        entry.customer_id,
        entry.effective_from,
    )


def billing_settings(workspace: Workspace) -> billing.BillingSettings:
    settings = WorkspaceSettings.from_dict(workspace.settings)
    return billing.BillingSettings(
        workspace_id=str(workspace.id),
        grouping=settings.grouping,
        billing_increment=settings.billing_increment,
    )


def run_billing(
    s: Session, workspace: Workspace, timesheet: billing.Timesheet
) -> billing.BillingResult:
    return billing.bill(
        timesheet,
        billing_settings(workspace),
        load_mappings(s, workspace),
        load_rates(s, workspace.id),
    )


# --- tracker entities seen (for the mapping screen) ----------------------------------------------
def record_tracker_entities(s: Session, workspace_id: int, timesheet: billing.Timesheet) -> None:
    seen: dict[tuple[str, str], dict[str, Any]] = {
        ("member", timesheet.member.id): {
            "name": timesheet.member.name,
            "email": timesheet.member.email,
            "client_id": None,
        }
    }
    for row in timesheet.rows:
        seen[("project", row.project_id)] = {
            "name": row.project_name,
            "email": None,
            "client_id": row.client.id if row.client else None,
        }
        if row.client:
            seen[("client", row.client.id)] = {
                "name": row.client.name,
                "email": row.client.email,
                "client_id": None,
            }
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    for (kind, tracker_id), values in seen.items():
        stmt = insert(TrackerEntity).values(
            workspace_id=workspace_id, kind=kind, tracker_id=tracker_id, last_seen_at=now, **values
        )
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "kind", "tracker_id"],
                set_={
                    "name": stmt.excluded.name,
                    "email": stmt.excluded.email,
                    "client_id": stmt.excluded.client_id,
                    "last_seen_at": now,
                },
            )
        )


# --- serialising lines into Draft rows and back into provider requests -------------------------
def _line_to_json(line: billing.Line) -> dict[str, Any]:
    return {
        "description": line.description,
        "minutes": line.minutes,
        "tracked_minutes": line.tracked_minutes,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "amount": str(line.amount),
        "service_date": line.service_date.isoformat() if line.service_date else None,
        "date_from": line.date_from.isoformat(),
        "date_to": line.date_to.isoformat(),
        "project_id": line.project_id,
        "project_name": line.project_name,
        "task_name": line.task_name,
        "rate_source": line.rate_source,
    }


def _draft_line(raw: Mapping[str, Any], currency: str) -> DraftLine:
    quantity = Decimal(raw["quantity"])
    unit_price = Decimal(raw["unit_price"])
    description = raw["description"]
    # Stripe has no quantity column on amount lines: say hours x rate in the words.
    rate_text = f"x {format_money(unit_price, currency)}"
    if rate_text not in description:
        description = f"{description} {rate_text}/h"
    return DraftLine(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        amount=Decimal(raw["amount"]),
        service_date=date.fromisoformat(raw["service_date"]) if raw.get("service_date") else None,
        period_start=date.fromisoformat(raw["date_from"]),
        period_end=date.fromisoformat(raw["date_to"]),
        metadata={"project_id": str(raw.get("project_id", ""))},
    )


def draft_invoice(workspace: Workspace, ts_row: Timesheet, row: Draft) -> DraftInvoice:
    """What the provider is asked to create; deterministic for a given Draft row."""
    settings = WorkspaceSettings.from_dict(workspace.settings)
    with db.new_session() as s:
        cs = s.scalars(
            select(CustomerSettings).where(
                CustomerSettings.workspace_id == workspace.id,
                CustomerSettings.customer_id == row.customer_id,
            )
        ).one_or_none()
    terms = cs.payment_terms_days if cs and cs.payment_terms_days is not None else None
    tax_code = cs.tax_code if cs and cs.tax_code else settings.tax_code
    member = ts_row.member.get("name", "")
    period = f"{ts_row.date_from:%Y-%m-%d} to {ts_row.date_to:%Y-%m-%d}"
    currency = row.currency or settings.default_currency
    memo = f"Hours worked by {member}, {period}. Timesheet {ts_row.timesheet_id}."
    lines = tuple(_draft_line(line, currency) for line in row.lines)
    if row.period_invoice_id is not None:
        # One invoice holds everyone's time: each line names its member (in the description
        # already), its timesheet and period, and the memo lists the timesheets.
        memo = period_memo(row.period_invoice_id, extra=row.id)
        lines = tuple(
            replace(
                line,
                description=f"{line.description} (timesheet {ts_row.timesheet_id})",
                metadata={
                    **line.metadata,
                    "member": member[:200],
                    "timesheet_id": ts_row.timesheet_id,
                    "period": period,
                },
            )
            for line in lines
        )
    note = (
        f"Draft generated by timesheet-invoicer from the approved timesheet "
        f"{ts_row.timesheet_id} ({member}, {period}). Review before sending. "
        f"tsi-key: {row.key}"
    )
    return DraftInvoice(
        key=row.key,
        customer_id=row.customer_id or "",
        customer_name=row.customer_name or "",
        currency=currency,
        lines=lines,
        total=row.total or Decimal(0),
        memo=memo,
        private_note=note,
        period_start=ts_row.date_from or row.created_at.date(),
        period_end=ts_row.date_to or row.created_at.date(),
        # The issue date is fixed when the row is created, so a retry days later sends the
        # very same request (Stripe rejects a reused idempotency key with other parameters).
        issue_date=row.created_at.astimezone(UTC).date(),
        payment_terms_days=terms if terms is not None else settings.payment_terms_days,
        tax_code=tax_code,
        metadata={
            "workspace_id": str(workspace.id),
            "timesheet_id": ts_row.timesheet_id,
            "customer_id": row.customer_id or "",
            "draft_key": row.key,
            "member": member[:200],
            "period": period,
            # per_period: the provider tags each line with its approval (QuickBooks lines have
            # no metadata of their own)
            **({"consolidated": "1"} if row.period_invoice_id is not None else {}),
        },
    )


# --- revisions ---------------------------------------------------------------------------------
def effective_revision(content_revision: str, generation: int) -> str:
    """A re-approval after a withdrawal needs fresh keys: the old drafts were deleted."""
    return content_revision if generation == 0 else f"{content_revision}-g{generation}"


# --- approving ---------------------------------------------------------------------------------
def _timesheet_row(s: Session, workspace: Workspace, source: str, timesheet_id: str) -> Timesheet:
    row = s.scalars(
        select(Timesheet).where(
            Timesheet.workspace_id == workspace.id,
            Timesheet.source == source,
            Timesheet.timesheet_id == timesheet_id,
        )
    ).one_or_none()
    if row is None:
        row = Timesheet(
            workspace_id=workspace.id,
            source=source,
            timesheet_id=timesheet_id,
            status=TimesheetStatus.WAITING_FOR_DATA,
            member={},
            summary={},
        )
        s.add(row)
        s.flush()
    return row


def _is_stale(ts_row: Timesheet, event: Event) -> bool:
    # Events arrive out of order: an older event never overrides a newer one.
    return ts_row.last_event_at is not None and event.timestamp < ts_row.last_event_at


def apply_approval(s: Session, workspace: Workspace, ts_row: Timesheet, event: Event) -> None:
    timesheet = trackers.normalize_timesheet(event.source, event.timesheet)
    content_revision = billing.timesheet_revision(timesheet)
    summary = dict(ts_row.summary or {})
    generation = int(summary.get("generation", 0))
    revision = effective_revision(content_revision, generation)
    if ts_row.status == TimesheetStatus.APPROVED and ts_row.revision not in (None, revision):
        # Re-approved with other rows while the old approval stood: retire the old drafts.
        withdraw_drafts(s, workspace, ts_row, reason="replaced by a newer approval")
        # As after a withdrawal: content approved before (A -> B -> A) needs fresh keys, its
        # old drafts were just voided under the ones it would get again.
        generation += 1
        summary["generation"] = generation
        revision = effective_revision(content_revision, generation)
    summary["content_revision"] = content_revision
    ts_row.summary = summary
    ts_row.status = TimesheetStatus.APPROVED
    ts_row.revision = revision
    ts_row.content = event.timesheet
    ts_row.member = {
        "id": timesheet.member.id,
        "name": timesheet.member.name,
        "email": timesheet.member.email,
    }
    ts_row.date_from = timesheet.date_from
    ts_row.date_to = timesheet.date_to
    ts_row.approved_at = timesheet.approved_at
    ts_row.last_event_at = event.timestamp
    record_tracker_entities(s, workspace.id, timesheet)


def is_live(row: Draft) -> bool:
    """Its hours are (or may be) on an invoice at the provider: never re-planned or duplicated."""
    if row.status in (DraftStatus.DRAFTED, DraftStatus.NEEDS_ATTENTION):
        return True
    # Sent at least once with no known outcome: it may exist under its key.
    return row.status in TO_PUSH and row.attempts > 0


def _row_pair(row: billing.TimeRow) -> tuple[str, str | None]:
    return (row.project_id, row.client.id if row.client else None)


class _Coverage:
    """The tracker rows already on live drafts of one revision."""

    def __init__(self, live: Iterable[Draft]) -> None:
        self.pairs: set[tuple[str, str | None]] = set()
        self.projects: set[str] = set()
        # per_period: a draft holding one period's part of a timesheet covers its rows of
        # those days only ([project, client, first day, last day])
        self.days: dict[tuple[str, str | None], list[tuple[date, date]]] = {}
        for row in live:
            if row.covers is None:
                # Planned before drafts recorded their rows: their lines name the projects.
                self.projects.update(str(line.get("project_id")) for line in row.lines or [])
                continue
            for entry in row.covers:
                pair = (str(entry[0]), None if entry[1] is None else str(entry[1]))
                if len(entry) >= 4 and entry[2] and entry[3]:
                    span = (date.fromisoformat(str(entry[2])), date.fromisoformat(str(entry[3])))
                    self.days.setdefault(pair, []).append(span)
                else:
                    self.pairs.add(pair)

    def __bool__(self) -> bool:
        return bool(self.pairs or self.projects or self.days)

    def __contains__(self, row: billing.TimeRow) -> bool:
        pair = _row_pair(row)
        return (
            pair in self.pairs
            or row.project_id in self.projects
            or any(first <= row.date <= last for first, last in self.days.get(pair, ()))
        )


def _covers_by_subject(
    timesheet: billing.Timesheet, mappings: billing.Mappings
) -> dict[str, list[list[str | None]]]:
    """subject_key -> the [project_id, client_id] pairs of billable rows that go to it."""
    out: dict[str, set[tuple[str, str | None]]] = {}
    for row in timesheet.rows:
        if row.billable is False or not row.minutes:
            continue
        project_id, client_id = _row_pair(row)
        customer = billing.resolve_customer(mappings, project_id, client_id)
        subject = f"customer:{customer.id}" if customer else f"project:{project_id}"
        out.setdefault(subject, set()).add((project_id, client_id))
    return {
        subject: [[p, c] for p, c in sorted(pairs, key=lambda pc: (pc[0], pc[1] or ""))]
        for subject, pairs in out.items()
    }


def plan_drafts(s: Session, workspace: Workspace, ts_row: Timesheet, *, retry_failed: bool) -> None:
    """Bring the Draft rows of the live revision in line with a fresh billing run.

    Only drafts not yet created at the provider are re-planned. Rows already on a live draft
    (created, or sent with an unknown outcome) are left out of the run, so a mapping, rate or
    settings change never bills an hour of this revision twice; replacing a created draft is an
    explicit re-bill (:func:`rebill_timesheet`), which withdraws it first.
    """
    assert ts_row.revision is not None and ts_row.content is not None
    timesheet = trackers.normalize_timesheet(ts_row.source, ts_row.content)
    revision = ts_row.revision
    existing = {
        d.subject_key: d
        for d in s.scalars(
            select(Draft).where(Draft.timesheet_pk == ts_row.id, Draft.revision == revision)
        )
    }
    coverage = _Coverage(d for d in existing.values() if is_live(d))
    filtered = bool(coverage)
    if filtered:
        timesheet = replace(
            timesheet,
            rows=tuple(r for r in timesheet.rows if r.billable is False or r not in coverage),
        )
    mappings = load_mappings(s, workspace)
    result = billing.bill(
        timesheet, billing_settings(workspace), mappings, load_rates(s, workspace.id)
    )
    covers = _covers_by_subject(timesheet, mappings)
    planned = _split_by_period(
        workspace, ts_row, revision, timesheet, mappings, result, covers, load_rates
    )
    settled = {DraftStatus.DRAFTED, DraftStatus.VOIDED, DraftStatus.NEEDS_ATTENTION}
    if not retry_failed:
        settled = settled | {DraftStatus.FAILED}
    seen: set[str] = set()

    def free_subject(base: str) -> str:
        # A customer whose created draft stays as it is gets the rest of its hours on another
        # draft (customer:<id>+2, +3 ...), never on the created one.
        subject, n = base, 1
        while (row := existing.get(subject)) is not None and is_live(row):
            n += 1
            subject = f"{base}+{n}"
        return subject

    def row_for(base: str, key: str, row_covers: list[list[str | None]] | None) -> Draft:
        subject = free_subject(base)
        seen.add(subject)
        row = existing.get(subject)
        if row is None:
            if filtered or subject != base or revision != ts_row.summary.get("content_revision"):
                # The engine's key is derived from the rows it was given; a draft planned beside
                # a live one, or after a re-bill, is named by its subject in the live revision.
                key = billing.draft_key(str(workspace.id), ts_row.timesheet_id, revision, subject)
            row = Draft(
                workspace_id=workspace.id,
                timesheet_pk=ts_row.id,
                revision=revision,
                subject_key=subject,
                key=key,
                status=DraftStatus.PENDING,
                lines=[],
                attempts=0,
            )
            s.add(row)
            existing[subject] = row
        row.covers = row_covers
        return row

    def fresh_key_if_refused(row: Draft) -> None:
        if row.attempts and row.provider_id is None:
            # The provider refused it (or it was never created), so nothing exists under the old
            # key; the new request goes out under a new key (a provider may replay a refusal).
            row.key = billing.draft_key(
                str(workspace.id),
                ts_row.timesheet_id,
                revision,
                f"{row.subject_key}#{row.attempts}",
            )

    for subject, key, draft, draft_covers in planned:
        row = row_for(subject, key, draft_covers)
        if row.status in settled:
            continue  # never rewrite what the provider has (or finance acted on)
        row.customer_id = draft.customer.id
        row.customer_name = draft.customer.name
        row.currency = draft.currency
        row.total = draft.total
        row.minutes = draft.minutes
        row.lines = [_line_to_json(line) for line in draft.lines]
        row.provider = workspace.provider
        if row.status in HOLD_STATUSES or row.status in (
            DraftStatus.FAILED,
            DraftStatus.SUPERSEDED,
        ):
            if row.status in KNOWN_NOT_CREATED or row.status == DraftStatus.SUPERSEDED:
                fresh_key_if_refused(row)
            row.status = DraftStatus.PENDING
            row.hold_reason = row.hold_message = row.error = None

    holds_by_subject: dict[str, list[billing.Hold]] = {}
    for hold in result.holds:
        holds_by_subject.setdefault(hold.subject_key, []).append(hold)
    for subject, holds in holds_by_subject.items():
        row = row_for(subject, holds[0].key, covers.get(subject))
        if row.status in settled:
            continue
        customer = holds[0].customer
        row.customer_id = customer.id if customer else None
        row.customer_name = customer.name if customer else None
        row.currency = customer.currency if customer else None
        row.minutes = max(h.minutes for h in holds)
        row.total = None
        row.lines = []
        row.status = DraftStatus(holds[0].reason)
        row.hold_reason = holds[0].reason
        row.hold_message = " ".join(dict.fromkeys(h.message for h in holds))
        if row.status == DraftStatus.NEEDS_RATE:
            hint = trackers.rate_hold_hint(workspace.id, ts_row.source)
            if hint:  # e.g. WebWork hides rates from the connected user: say so, with the fix
                row.hold_message = f"{hint} {row.hold_message}"
        row.provider = workspace.provider

    for subject, row in existing.items():
        if subject in seen or is_live(row):
            continue
        if row.status in HOLD_STATUSES or row.status in TO_PUSH or row.status == DraftStatus.FAILED:
            # e.g. an unmapped project's hold, now billed on its customer's draft, or a draft
            # never sent whose rows now go to another customer
            row.status = DraftStatus.SUPERSEDED
    summary = dict(ts_row.summary or {})
    summary.update(
        excluded_minutes=result.excluded_minutes,
        excluded_rows=result.excluded_rows,
        held_minutes=result.held_minutes,
    )
    ts_row.summary = summary


def _split_by_period(
    workspace: Workspace,
    ts_row: Timesheet,
    revision: str,
    timesheet: billing.Timesheet,
    mappings: billing.Mappings,
    result: billing.BillingResult,
    covers: dict[str, list[list[str | None]]],
    rates: Any,
) -> list[tuple[str, str, billing.Draft, list[list[str | None]] | None]]:
    """(subject, key, draft, covers) for each draft to plan.

    A per_period customer whose hours of this timesheet fall in two periods gets one draft per
    period (subject ``customer:<id>@<period start>``), billed from that period's days only, so
    each part goes on its own period's invoice. Everyone else: the engine's drafts as they are.
    """
    planned: list[tuple[str, str, billing.Draft, list[list[str | None]] | None]] = []
    table: billing.RateTable | None = None
    for draft in result.drafts:
        base = f"customer:{draft.customer.id}"
        mode, period, week_start = consolidation_of(workspace, draft.customer.id)
        rows = [
            r
            for r in timesheet.rows
            if r.billable is not False
            and r.minutes
            and (c := billing.resolve_customer(mappings, *_row_pair(r))) is not None
            and c.id == draft.customer.id
        ]
        spans = sorted({billing.period_bounds(r.date, period, week_start) for r in rows})
        if mode != "per_period" or len(spans) < 2:
            planned.append((base, draft.key, draft, covers.get(base)))
            continue
        if table is None:
            with db.new_session() as s:
                table = rates(s, workspace.id)
        for first, last in spans:
            part = replace(
                timesheet,
                rows=tuple(r for r in rows if first <= r.date <= last),
                date_from=max(timesheet.date_from, first),
                date_to=min(timesheet.date_to, last),
            )
            billed = billing.bill(part, billing_settings(workspace), mappings, table)
            subject = f"{base}@{first.isoformat()}"
            key = billing.draft_key(str(workspace.id), ts_row.timesheet_id, revision, subject)
            part_covers: list[list[str | None]] = [
                [pair[0], pair[1], first.isoformat(), last.isoformat()]
                for pair in _covers_by_subject(part, mappings).get(base, [])
            ]
            planned.extend((subject, key, d, part_covers) for d in billed.drafts)
    return planned


def _record_created(row: Draft, created: CreatedDraft) -> None:
    observability.DRAFTS_CREATED.labels(row.provider or "unknown").inc()
    row.provider_id = created.provider_id
    row.link = created.link
    row.status = DraftStatus.DRAFTED
    row.error = row.hold_reason = row.hold_message = None
    _record_provider_status(row, PROVIDER_STATUS_OF_DRAFT_STATE.get(created.state))


# What a create/find tells about the invoice's provider state (the status sync refines it).
PROVIDER_STATUS_OF_DRAFT_STATE = {
    DraftState.DRAFT: ProviderStatus.DRAFT,
    DraftState.SENT: ProviderStatus.SENT,
    DraftState.VOID: ProviderStatus.VOIDED,
    DraftState.DELETED: ProviderStatus.DELETED,
}


def _record_provider_status(row: Draft, status: ProviderStatus | None) -> None:
    if status is not None:
        row.provider_status = status.value
        row.provider_status_at = utcnow()


def push_drafts(workspace: Workspace, ts_row_id: int, provider: AccountingProvider) -> None:
    """Create every pending draft of the live revision at the provider, one at a time."""
    with db.new_session() as s:
        ts_row = s.get(Timesheet, ts_row_id)
        assert ts_row is not None
        ids = list(
            s.scalars(
                select(Draft.id)
                .where(
                    Draft.timesheet_pk == ts_row_id,
                    Draft.revision == ts_row.revision,
                    Draft.status.in_(list(TO_PUSH)),
                )
                .order_by(Draft.id)
            )
        )
    # One draft's transient failure (a 5xx, a timeout) must not keep the other customers of the
    # approval waiting: push them all, then raise the first failure so the job retries it.
    # A lost connection is different: every other call would fail the same way.
    first_failure: RetryLater | None = None
    for draft_id in ids:
        try:
            push_draft(workspace, ts_row_id, draft_id, provider)
        except ReconnectNeeded:
            raise
        except RetryLater as exc:
            first_failure = first_failure or exc
        worker.heartbeat()  # a timesheet with many customers may outlast one lease
    if first_failure is not None:
        raise first_failure


def push_draft(
    workspace: Workspace, ts_row_id: int, draft_id: int, provider: AccountingProvider
) -> None:
    with db.new_session() as s:
        pending = s.get(Draft, draft_id)
        assert pending is not None
        mode, period, week_start = consolidation_of(workspace, pending.customer_id)
        # A row already sent on its own (attempts > 0) stays on its own invoice: it may exist.
        consolidated = pending.period_invoice_id is not None or (
            mode == "per_period" and pending.attempts == 0 and bool(pending.lines)
        )
    if consolidated:
        _push_into_period(workspace, ts_row_id, draft_id, provider, period, week_start)
        return
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        ts_row = s.get(Timesheet, ts_row_id)
        assert row is not None and ts_row is not None
        counted = False  # this call counted an attempt (committed before the provider call)
        try:
            if row.attempts > 0 and not row.provider_id:
                # A previous attempt may have reached the provider: look before creating.
                found = provider.find_draft(row.key)
                if found is not None:
                    _record_created(row, found)
                    s.commit()
                    return
            invoice = draft_invoice(workspace, ts_row, row)
            row.attempts += 1
            row.status = DraftStatus.PENDING
            s.commit()  # durable before the call: a crash now means "look it up first"
            counted = True
            created = provider.create_draft(invoice)
        except CurrencyMismatch as exc:
            row.status = DraftStatus.CURRENCY_MISMATCH
            row.hold_reason = DraftStatus.CURRENCY_MISMATCH
            row.hold_message = exc.message
            s.commit()
            return
        except Rejected as exc:
            row.status = DraftStatus.FAILED
            row.error = str(exc)
            s.commit()
            return
        except ReconnectNeeded as exc:
            row.status = DraftStatus.RECONNECT_NEEDED
            row.error = str(exc)
            s.commit()
            raise
        except RetryLater as exc:
            if counted and exc.created_nothing:
                # Nothing exists under the key (e.g. the limiter refused before sending): the
                # next try goes straight to the create instead of spending a request on a look-up.
                row.attempts -= 1
            row.error = str(exc)
            s.commit()
            raise
        _record_created(row, created)
        s.commit()


# --- per_period consolidation -------------------------------------------------------------------
def consolidation_of(workspace: Workspace, customer_id: str | None) -> tuple[str, str, str]:
    """(consolidation, period, week_start) for one customer: its overrides, else the workspace's."""
    settings = WorkspaceSettings.from_dict(workspace.settings)
    values = [settings.consolidation, settings.period, settings.week_start]
    if customer_id:
        with db.new_session() as s:
            cs = s.scalars(
                select(CustomerSettings).where(
                    CustomerSettings.workspace_id == workspace.id,
                    CustomerSettings.customer_id == customer_id,
                )
            ).one_or_none()
        if cs is not None:
            for i, override in enumerate((cs.consolidation, cs.period, cs.week_start)):
                values[i] = override or values[i]
    return values[0], values[1], values[2]


def period_memo(
    period_invoice_id: int, *, extra: int | None = None, exclude: int | None = None
) -> str:
    """The memo of a period invoice: its period and every timesheet on it."""
    with db.new_session() as s:
        pinv = s.get(PeriodInvoice, period_invoice_id)
        assert pinv is not None
        names = []
        for row in s.scalars(
            select(Draft).where(Draft.period_invoice_id == period_invoice_id).order_by(Draft.id)
        ):
            if row.id != exclude and (is_live(row) or row.id == extra):
                ts = s.get(Timesheet, row.timesheet_pk)
                if ts is not None:
                    names.append(f"{ts.timesheet_id} ({(ts.member or {}).get('name', '')})")
        period = f"{pinv.period_start:%Y-%m-%d} to {pinv.period_end:%Y-%m-%d}"
    listed = ", ".join(dict.fromkeys(names)) or "none"
    return f"Hours worked {period}. Timesheets: {listed}."


@contextmanager
def _period_lock(workspace_id: int, customer_id: str, currency: str, start: date) -> Iterator[None]:
    """One writer at a time per customer period invoice, across processes: two approvals of the
    same week never both open a draft, and never lose each other's lines."""
    lease = float(_config().get("JOB_LEASE_SECONDS", 20))
    name = f"period:{workspace_id}:{currency}:{start.isoformat()}:{customer_id}"[:200]
    try:
        with advisory_lock(name, ttl=lease, timeout=min(lease, 5.0), keepalive=True):
            yield
    except LockTimeout:
        raise RetryLater(
            "another approval is being added to this customer's draft for the period",
            retry_after=min(lease, 5.0),
        ) from None


def _row_first_day(row: Draft) -> date:
    return min(date.fromisoformat(line["date_from"]) for line in row.lines)


def _open_period_invoice(
    s: Session, workspace: Workspace, row: Draft, bounds: tuple[date, date]
) -> tuple[PeriodInvoice, str | None]:
    """The customer's open invoice for the period, or a new one this row creates.

    A period invoice finance already sent (as the status sync learnt) is closed first: the row
    then opens a new draft for the rest of the period, and says so."""
    assert row.customer_id is not None and row.currency is not None
    found = list(
        s.scalars(
            select(PeriodInvoice)
            .where(
                PeriodInvoice.workspace_id == workspace.id,
                PeriodInvoice.customer_id == row.customer_id,
                PeriodInvoice.currency == row.currency,
                PeriodInvoice.period_start == bounds[0],
            )
            .order_by(PeriodInvoice.seq)
        )
    )
    note = None
    for pinv in found:
        if pinv.status != PeriodInvoiceStatus.OPEN:
            continue
        sent = [
            r
            for r in s.scalars(select(Draft).where(Draft.period_invoice_id == pinv.id))
            if r.provider_status in HANDS_OFF_PROVIDER_STATUSES
        ]
        if sent:
            pinv.status = PeriodInvoiceStatus.CLOSED
            note = _sent_note(sent[0].provider_status)
            continue
        return pinv, None
    if any(p.status == PeriodInvoiceStatus.CLOSED for p in found):
        note = note or _sent_note(ProviderStatus.SENT)
    pinv = PeriodInvoice(
        workspace_id=workspace.id,
        customer_id=row.customer_id,
        currency=row.currency,
        period_start=bounds[0],
        period_end=bounds[1],
        seq=max((p.seq for p in found), default=0) + 1,
        key=row.key,
        provider=row.provider or workspace.provider,
        status=PeriodInvoiceStatus.OPEN,
    )
    s.add(pinv)
    s.flush()
    return pinv, note


def _sent_note(provider_status: str | None) -> str:
    state = (provider_status or "sent").replace("_", " ")
    return (
        f"This customer's draft for the period was already {state} by finance, so it was left "
        "alone: these hours are on a new draft for the rest of the period."
    )


def _push_into_period(
    workspace: Workspace,
    ts_row_id: int,
    draft_id: int,
    provider: AccountingProvider,
    period: str,
    week_start: str,
) -> None:
    """per_period: create the customer's period invoice, or append this row's lines to it."""
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        assert row is not None
        pinv = s.get(PeriodInvoice, row.period_invoice_id) if row.period_invoice_id else None
        if pinv is not None:
            bounds = (pinv.period_start, pinv.period_end)
        else:
            bounds = billing.period_bounds(_row_first_day(row), period, week_start)
        customer_id, currency = row.customer_id or "", row.currency or ""
    with _period_lock(workspace.id, customer_id, currency, bounds[0]):
        # A sent invoice closes and the row opens a new one: at most twice in a row.
        for _ in range(3):
            if _push_period_once(workspace, ts_row_id, draft_id, provider, bounds):
                return
        raise RetryLater("the period's draft changed while adding lines; trying again")


def _push_period_once(
    workspace: Workspace,
    ts_row_id: int,
    draft_id: int,
    provider: AccountingProvider,
    bounds: tuple[date, date],
) -> bool:
    with db.new_session() as s:
        row = s.get(Draft, draft_id)
        ts_row = s.get(Timesheet, ts_row_id)
        assert row is not None and ts_row is not None
        if row.status not in TO_PUSH:
            return True
        note = None
        pinv = s.get(PeriodInvoice, row.period_invoice_id) if row.period_invoice_id else None
        if pinv is None or pinv.status != PeriodInvoiceStatus.OPEN:
            pinv, note = _open_period_invoice(s, workspace, row, bounds)
            row.period_invoice_id = pinv.id
            s.commit()  # durable before any call: a retry appends to the same invoice
        creator = pinv.key == row.key
        if not creator and pinv.provider_id is None:
            first = s.scalars(select(Draft).where(Draft.key == pinv.key)).one_or_none()
            if first is not None and is_live(first):
                raise RetryLater("waiting for the customer's draft for the period to be created")
            # Its creator never reached the provider (refused, held, withdrawn): this row
            # creates the period's invoice instead.
            pinv.key = row.key
            s.commit()
            creator = True
        try:
            if creator:
                if row.attempts > 0 and not row.provider_id:
                    found = provider.find_draft(row.key)
                    if found is not None:
                        _record_period_created(row, pinv, found, note)
                        s.commit()
                        return True
                invoice = draft_invoice(workspace, ts_row, row)
                row.attempts += 1
                row.status = DraftStatus.PENDING
                s.commit()  # durable before the call: a crash now means "look it up first"
                created = provider.create_draft(invoice)
            else:
                assert pinv.provider_id is not None
                invoice = draft_invoice(workspace, ts_row, row)
                row.attempts += 1
                row.status = DraftStatus.PENDING
                s.commit()  # a crash now: the retry appends again, the provider skips its lines
                created = provider.append_lines(pinv.provider_id, invoice)
        except NotADraft:
            # Finance sent (or removed) the period's invoice meanwhile: nothing was added.
            pinv.status = PeriodInvoiceStatus.CLOSED
            row.period_invoice_id = None
            s.commit()
            return False
        except CurrencyMismatch as exc:
            row.status = DraftStatus.CURRENCY_MISMATCH
            row.hold_reason = DraftStatus.CURRENCY_MISMATCH
            row.hold_message = exc.message
            s.commit()
            return True
        except Rejected as exc:
            row.status = DraftStatus.FAILED
            row.error = str(exc)
            s.commit()
            return True
        except ReconnectNeeded as exc:
            row.status = DraftStatus.RECONNECT_NEEDED
            row.error = str(exc)
            s.commit()
            raise
        except RetryLater as exc:
            row.error = str(exc)
            s.commit()
            raise
        if created.state == DraftState.SENT and not creator:
            # Reported as sent after all: never count these lines as on it.
            pinv.status = PeriodInvoiceStatus.CLOSED
            row.period_invoice_id = None
            s.commit()
            return False
        _record_period_created(row, pinv, created, note)
        s.commit()
        return True


def _record_period_created(
    row: Draft, pinv: PeriodInvoice, created: CreatedDraft, note: str | None
) -> None:
    _record_created(row, created)
    if pinv.key == row.key:
        pinv.provider_id = created.provider_id
        pinv.provider = row.provider
    if note:
        row.hold_message = note  # the console shows why a second draft exists this period


def _withdraw_from_period(
    s: Session, workspace: Workspace, row: Draft, provider: AccountingProvider, reason: str
) -> None:
    """Remove only this row's lines from its period invoice; its last lines delete the draft."""
    pinv = s.get(PeriodInvoice, row.period_invoice_id)
    assert pinv is not None
    with _period_lock(workspace.id, pinv.customer_id, pinv.currency, pinv.period_start):
        s.refresh(pinv)
        s.refresh(row)
        invoice_id = row.provider_id or (pinv.provider_id if row.attempts > 0 else None)
        if invoice_id is None and row.attempts > 0 and pinv.key == row.key:
            found = provider.find_draft(row.key)
            invoice_id = found.provider_id if found else None
            if invoice_id is None:
                provider.abandon_draft(row.key)
        if invoice_id is None:
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Not invoiced: {reason}."
            s.commit()
            return
        if row.provider_status in HANDS_OFF_PROVIDER_STATUSES:
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but the period's invoice holding its "
                f"lines is already {row.provider_status.replace('_', ' ')} at the provider, so "
                "it was left alone. Review it by hand."
            )
            pinv.status = PeriodInvoiceStatus.CLOSED
            s.commit()
            return
        others = [
            r
            for r in s.scalars(select(Draft).where(Draft.period_invoice_id == pinv.id))
            if r.id != row.id and is_live(r)
        ]
        if others:
            outcome = provider.remove_lines(
                invoice_id, row.key, memo=period_memo(pinv.id, exclude=row.id)
            )
            done = f"its lines were removed from the period's draft ({reason})"
        else:
            outcome = provider.remove_draft(invoice_id)
            done = f"the period's draft held only its lines and was {outcome.value} ({reason})"
        if outcome == RemovalOutcome.NOT_A_DRAFT:
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but finance already sent or finalized "
                "the period's invoice holding its lines, so it was left alone. Review it by hand."
            )
            pinv.status = PeriodInvoiceStatus.CLOSED
        else:
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Not invoiced: {done}."
            if not others:
                pinv.status = PeriodInvoiceStatus.DELETED
                _record_provider_status(
                    row,
                    ProviderStatus.VOIDED
                    if outcome == RemovalOutcome.VOIDED
                    else ProviderStatus.DELETED,
                )
        s.commit()
        worker.heartbeat()


# --- withdrawing ---------------------------------------------------------------------------------
def withdraw_drafts(s: Session, workspace: Workspace, ts_row: Timesheet, *, reason: str) -> None:
    """Delete/void every draft of this timesheet still a draft at the provider; flag the rest."""
    rows = list(
        s.scalars(
            select(Draft).where(
                Draft.timesheet_pk == ts_row.id,
                Draft.status.notin_(
                    [DraftStatus.VOIDED, DraftStatus.SUPERSEDED, DraftStatus.NEEDS_ATTENTION]
                ),
            )
        )
    )
    provider: AccountingProvider | None = None
    for row in rows:
        if row.status not in AT_PROVIDER:
            row.status = DraftStatus.SUPERSEDED  # holds and failures never reached the provider
            row.hold_message = f"Not invoiced: {reason}."
            continue
        provider = provider or build_provider(
            workspace.id, row.provider or workspace.provider, _config()
        )
        if row.period_invoice_id is not None:
            _withdraw_from_period(s, workspace, row, provider, reason)
            continue
        provider_id = row.provider_id
        if provider_id is None and row.attempts > 0:
            found = provider.find_draft(row.key)
            provider_id = found.provider_id if found else None
        if provider_id is None:
            if row.attempts > 0:
                provider.abandon_draft(row.key)  # e.g. a Stripe invoice whose lines never came
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Not invoiced: {reason}."
            s.commit()
            continue
        if row.provider_status in HANDS_OFF_PROVIDER_STATUSES:
            # The status sync saw finance send (or be paid for) it: never touch it, flag it.
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but this invoice is already "
                f"{row.provider_status.replace('_', ' ')} at the provider, so it was left "
                "alone. Review it by hand."
            )
            s.commit()
            continue
        if row.provider_status in (ProviderStatus.VOIDED, ProviderStatus.DELETED):
            # Finance already removed it (neither state can be undone): nothing left to call.
            row.status = DraftStatus.VOIDED
            row.hold_message = (
                f"Not invoiced: {reason}; finance had already {row.provider_status} it at the "
                "provider."
            )
            s.commit()
            continue
        outcome = provider.remove_draft(provider_id)
        if outcome == RemovalOutcome.NOT_A_DRAFT:
            row.status = DraftStatus.NEEDS_ATTENTION
            row.hold_message = (
                f"The approval was withdrawn ({reason}), but finance already sent or finalized "
                "this invoice, so it was left alone. Review it by hand."
            )
        else:
            row.status = DraftStatus.VOIDED
            row.hold_message = f"Draft {outcome.value} at the provider: {reason}."
            _record_provider_status(
                row,
                ProviderStatus.VOIDED
                if outcome == RemovalOutcome.VOIDED
                else ProviderStatus.DELETED,
            )
        s.commit()  # one provider call, one durable record
        worker.heartbeat()


def apply_withdrawal(s: Session, workspace: Workspace, ts_row: Timesheet, event: Event) -> None:
    was_approved = ts_row.status == TimesheetStatus.APPROVED
    ts_row.status = TimesheetStatus.WITHDRAWN
    ts_row.last_event_at = event.timestamp
    s.commit()
    if was_approved or ts_row.revision:
        withdraw_drafts(s, workspace, ts_row, reason="approval withdrawn")
        summary = dict(ts_row.summary or {})
        summary["generation"] = int(summary.get("generation", 0)) + 1
        ts_row.summary = summary
        ts_row.revision = None


# --- job handlers ----------------------------------------------------------------------------
@contextmanager
def _timesheet_lock(workspace_id: int, timesheet_id: str) -> Iterator[None]:
    """One worker at a time per timesheet, across processes.

    The lock lives as long as a job lease and is renewed with it by the worker's heartbeat
    thread, so a slow job keeps it and a killed worker's lock frees itself when its job becomes
    claimable again.
    """
    lease = float(_config().get("JOB_LEASE_SECONDS", 20))
    name = f"timesheet:{workspace_id}:{timesheet_id}"[:200]
    try:
        # Wait briefly, then give the worker thread back: the job is retried a few seconds later
        # rather than holding a thread for as long as the other run takes.
        with advisory_lock(name, ttl=lease, timeout=min(lease, 2.0), keepalive=True):
            yield
    except LockTimeout:
        raise RetryLater(
            "another worker is processing this timesheet", retry_after=min(lease, 5.0)
        ) from None


@worker.handler("process_delivery")
def process_delivery(job: Job) -> None:
    with db.new_session() as s:
        delivery = s.get(Delivery, job.delivery_id)
        if delivery is None:
            raise Rejected(f"delivery {job.delivery_id} no longer exists")
        try:
            event = trackers.parse_event(delivery.source, delivery.body)
        except EventError as exc:
            delivery.status = DeliveryStatus.INVALID
            delivery.error = str(exc)
            s.commit()
            return
        if not event.supported:  # a replayed "ignored" delivery: still nothing to do
            delivery.status = DeliveryStatus.IGNORED
            s.commit()
            return
        workspace_id, source = delivery.workspace_id, delivery.source

    with (
        observability.log_context(timesheet_id=event.timesheet_id),
        _timesheet_lock(workspace_id, event.timesheet_id),
    ):
        outcome = _process_event(workspace_id, source, event)
    with db.session_scope() as s:
        delivery = s.get(Delivery, job.delivery_id)
        if delivery is not None:
            delivery.status = DeliveryStatus.PROCESSED
            delivery.error = outcome
    observability.DELIVERIES.labels("processed").inc()


def _process_event(workspace_id: int, source: str, event: Event) -> str | None:
    if event.type == "timesheet.approved":
        # A connected tracker account is the source of truth for the rows: thin events are
        # filled and full ones re-read, so a webhook and a poll of one approval have the same
        # content revision (billed once). Done before any write: it may call out.
        event = trackers.fill_event(workspace_id, source, event) or event
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        assert workspace is not None
        ts_row = _timesheet_row(s, workspace, source, event.timesheet_id)
        if _is_stale(ts_row, event):
            s.commit()
            return f"stale: a newer event for this timesheet was already applied ({event.type})"
        if event.type == "timesheet.unapproved":
            apply_withdrawal(s, workspace, ts_row, event)
            s.commit()
            return None
        if event.is_thin:
            if ts_row.content is None:
                ts_row.status = TimesheetStatus.WAITING_FOR_DATA
            ts_row.last_event_at = event.timestamp
            s.commit()
            raise worker.WaitFor(
                "tracker_data",
                "The event carries only the timesheet id. Connect the WebWork account so the "
                "connector can fetch the approved rows; the approval waits until then.",
            )
        try:
            apply_approval(s, workspace, ts_row, event)
        except (EventError, ValueError) as exc:
            s.rollback()
            raise Rejected(f"the timesheet cannot be billed: {exc}") from exc
        s.commit()
        ts_pk = ts_row.id
    bill_timesheet_now(workspace_id, ts_pk)
    return None


def bill_timesheet_now(workspace_id: int, ts_pk: int, *, retry_failed: bool = False) -> None:
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        ts_row = s.get(Timesheet, ts_pk)
        if workspace is None or ts_row is None or ts_row.status != TimesheetStatus.APPROVED:
            return
        try:
            plan_drafts(s, workspace, ts_row, retry_failed=retry_failed)
        except ValueError as exc:
            s.rollback()
            raise Rejected(f"the timesheet cannot be billed: {exc}") from exc
        s.commit()
        s.expunge(workspace)
    if not _has_work(ts_pk):
        return
    try:
        provider = build_provider(workspace.id, workspace.provider, _config())
    except ReconnectNeeded as exc:
        _mark_waiting_for_reconnect(ts_pk, str(exc))
        raise
    push_drafts(workspace, ts_pk, provider)


def _mark_waiting_for_reconnect(ts_pk: int, message: str) -> None:
    """No usable account at all (never connected, or revoked): say so on every waiting draft."""
    with db.session_scope() as s:
        ts_row = s.get(Timesheet, ts_pk)
        assert ts_row is not None
        for row in s.scalars(
            select(Draft).where(
                Draft.timesheet_pk == ts_pk,
                Draft.revision == ts_row.revision,
                Draft.status.in_(list(TO_PUSH)),
            )
        ):
            row.status = DraftStatus.RECONNECT_NEEDED
            row.error = message


def _has_work(ts_pk: int) -> bool:
    with db.new_session() as s:
        ts_row = s.get(Timesheet, ts_pk)
        assert ts_row is not None
        return (
            s.scalars(
                select(Draft.id).where(
                    Draft.timesheet_pk == ts_pk,
                    Draft.revision == ts_row.revision,
                    Draft.status.in_(list(TO_PUSH)),
                )
            ).first()
            is not None
        )


@worker.handler("bill_timesheet")
def bill_timesheet(job: Job) -> None:
    ts_pk = int(job.payload["timesheet_pk"])
    with db.new_session() as s:
        ts_row = s.get(Timesheet, ts_pk)
        if ts_row is None:
            return
        timesheet_id = ts_row.timesheet_id
    with (
        observability.log_context(timesheet_id=timesheet_id),
        _timesheet_lock(job.workspace_id, timesheet_id),
    ):
        bill_timesheet_now(
            job.workspace_id, ts_pk, retry_failed=bool(job.payload.get("retry_failed"))
        )


# --- entry points for the admin console and the API ----------------------------------------------
def _enqueue_bill(workspace_id: int, ts_pks: Iterable[int], *, retry_failed: bool) -> list[int]:
    job_ids = []
    with db.session_scope() as s:
        for ts_pk in ts_pks:
            job = new_job(
                workspace_id, "bill_timesheet", timesheet_pk=ts_pk, retry_failed=retry_failed
            )
            s.add(job)
            s.flush()
            job_ids.append(job.id)
    for job_id in job_ids:
        worker.enqueue(job_id)
    return job_ids


def release_holds(workspace_id: int) -> int:
    """Re-bill every approved timesheet with held drafts (after a mapping or rate change)."""
    waiting = set(HOLD_STATUSES) | {DraftStatus.RECONNECT_NEEDED}
    with db.new_session() as s:
        ts_pks = list(
            s.scalars(
                select(Timesheet.id)
                .join(
                    Draft,
                    (Draft.timesheet_pk == Timesheet.id) & (Draft.revision == Timesheet.revision),
                )
                .where(
                    Timesheet.workspace_id == workspace_id,
                    Timesheet.status == TimesheetStatus.APPROVED,
                    Draft.status.in_(list(waiting)),
                )
                .distinct()
            )
        )
    return len(_enqueue_bill(workspace_id, ts_pks, retry_failed=False))


def retry_timesheet(workspace_id: int, timesheet_pk: int) -> int | None:
    """The retry button: failed drafts of one approval are tried again."""
    with db.new_session() as s:
        ts_row = s.get(Timesheet, timesheet_pk)
        if ts_row is None or ts_row.workspace_id != workspace_id:
            return None
    return _enqueue_bill(workspace_id, [timesheet_pk], retry_failed=True)[0]


class RebillRefused(ValueError):
    """The approval cannot be re-billed now (withdrawn, or never approved)."""


def request_rebill(workspace_id: int, timesheet_pk: int) -> int | None:
    """The re-bill button: queue a job that withdraws the approval's created drafts (deleted if
    still drafts, flagged if finance sent them) and bills the revision again with the current
    mappings, rates and settings. None when the approval is not this workspace's."""
    with db.session_scope() as s:
        ts_row = s.get(Timesheet, timesheet_pk)
        if ts_row is None or ts_row.workspace_id != workspace_id:
            return None
        if ts_row.status != TimesheetStatus.APPROVED or ts_row.revision is None:
            raise RebillRefused(
                "This timesheet is not approved (it was withdrawn or is waiting for its rows), "
                "so there is nothing to re-bill."
            )
        # The job re-bills this revision only: a retried or repeated job finds the revision
        # moved on and just finishes billing instead of withdrawing the new drafts again.
        job = new_job(
            workspace_id, "rebill_timesheet", timesheet_pk=ts_row.id, revision=ts_row.revision
        )
        s.add(job)
        s.flush()
        job_id = job.id
    worker.enqueue(job_id)
    return job_id


def rebill_now(workspace_id: int, ts_pk: int, revision: str) -> None:
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        ts_row = s.get(Timesheet, ts_pk)
        if workspace is None or ts_row is None or ts_row.status != TimesheetStatus.APPROVED:
            return
        if ts_row.revision == revision:
            withdraw_drafts(
                s, workspace, ts_row, reason="re-billed with the current mappings and rates"
            )
            summary = dict(ts_row.summary or {})
            summary["generation"] = int(summary.get("generation", 0)) + 1
            ts_row.summary = summary
            ts_row.revision = effective_revision(
                summary.get("content_revision") or revision, summary["generation"]
            )
            s.commit()
    bill_timesheet_now(workspace_id, ts_pk, retry_failed=True)


@worker.handler("rebill_timesheet")
def rebill_timesheet(job: Job) -> None:
    ts_pk = int(job.payload["timesheet_pk"])
    with db.new_session() as s:
        ts_row = s.get(Timesheet, ts_pk)
        if ts_row is None:
            return
        timesheet_id = ts_row.timesheet_id
    with _timesheet_lock(job.workspace_id, timesheet_id):
        rebill_now(job.workspace_id, ts_pk, str(job.payload.get("revision") or ""))


def approvals_with_created_drafts(
    workspace_id: int,
    *,
    customer_id: str | None = None,
    tracker: tuple[str, str] | None = None,
) -> int:
    """How many approved timesheets have drafts already created at the provider (optionally
    for one customer, or billing rows of one tracker client/project): a mapping, rate or
    settings change leaves those drafts as they are, so the admin is told."""
    live = or_(
        Draft.status.in_([DraftStatus.DRAFTED, DraftStatus.NEEDS_ATTENTION]),
        Draft.status.in_(list(TO_PUSH)) & (Draft.attempts > 0),
    )  # is_live() in SQL
    stmt = (
        select(Draft.timesheet_pk, Draft.covers, Draft.lines)
        .join(
            Timesheet,
            (Draft.timesheet_pk == Timesheet.id) & (Draft.revision == Timesheet.revision),
        )
        .where(
            Timesheet.workspace_id == workspace_id,
            Timesheet.status == TimesheetStatus.APPROVED,
            live,
        )
    )
    if customer_id is not None:
        stmt = stmt.where(Draft.customer_id == customer_id)
    with db.new_session() as s:
        if tracker is None:
            found = stmt.subquery()
            return int(s.scalar(select(func.count(func.distinct(found.c.timesheet_pk)))) or 0)
        return len(
            {
                pk
                for pk, covers, lines in s.execute(stmt)
                if _covers_tracker(covers, lines, *tracker)
            }
        )


def _covers_tracker(
    covers: list[list[str | None]] | None,
    lines: list[dict[str, Any]] | None,
    kind: str,
    tracker_id: str,
) -> bool:
    if covers is None:
        # Planned before drafts recorded their rows: lines name projects, never clients, so a
        # client is assumed to be on it (saying too much beats hiding a created draft).
        return kind == "client" or any(
            str(line.get("project_id")) == tracker_id for line in lines or []
        )
    index = 0 if kind == "project" else 1
    return any(pair[index] == tracker_id for pair in covers)


def future_approvals_notice(count: int) -> str | None:
    """What a change page and API response say when created drafts stay as they are."""
    if not count:
        return None
    which = "1 approval already has" if count == 1 else f"{count} approvals already have"
    return (
        f"This change applies to future approvals. {which} drafts created in the accounting "
        "system; they stay as they are. To bill such an approval again with the current "
        "mappings and rates, use Re-bill on it: its drafts are withdrawn first."
    )


def on_connection_restored(workspace_id: int) -> None:
    """Called after an admin (re)connects an accounting account: parked work resumes."""
    worker.resume_waiting(workspace_id, "reconnect_needed")
    release_holds(workspace_id)


def preview_event(workspace: Workspace, event: Event) -> dict[str, Any]:
    """What an approval would produce now, with no side effects."""
    timesheet = trackers.normalize_timesheet(event.source, event.timesheet)
    with db.new_session() as s:
        result = run_billing(s, workspace, timesheet)
    return {
        "revision": result.revision,
        "drafts": [
            {
                "customer": {"id": d.customer.id, "name": d.customer.name},
                "currency": d.currency,
                "total": str(d.total),
                "minutes": d.minutes,
                "key": d.key,
                "lines": [_line_to_json(line) for line in d.lines],
            }
            for d in result.drafts
        ],
        "holds": [
            {
                "reason": h.reason,
                "subject": h.subject_key,
                "customer": {"id": h.customer.id, "name": h.customer.name} if h.customer else None,
                "message": h.message,
                "minutes": h.minutes,
                "project_ids": list(h.project_ids),
                "client_ids": list(h.client_ids),
            }
            for h in result.holds
        ],
        "excluded": {"minutes": result.excluded_minutes, "rows": result.excluded_rows},
    }

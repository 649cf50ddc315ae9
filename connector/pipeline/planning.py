"""From an approved timesheet to planned Draft rows: the timesheet row, billing, covers, holds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import billing, trackers
from connector.models import (
    HOLD_STATUSES,
    Draft,
    DraftStatus,
    Timesheet,
    TimesheetStatus,
    Workspace,
)
from connector.pipeline.draft_status import TO_PUSH, is_live
from connector.pipeline.inputs import (
    billing_settings,
    current_books,
    load_rates,
    mappings_in,
    remember_timesheet,
    timesheet_of,
)
from connector.pipeline.invoice_requests import line_to_json
from connector.pipeline.invoices import consolidation_of
from connector.pipeline.other_books import connect_first, mapped_elsewhere
from connector.pipeline.tracker_entities import record_tracker_entities
from connector.pipeline.withdrawing import (
    effective_revision,
    start_new_generation,
    withdraw_drafts,
)
from connector.trackers import TrackerEvent as Event


# --- approving ---------------------------------------------------------------------------------
def timesheet_row(s: Session, workspace: Workspace, source: str, timesheet_id: str) -> Timesheet:
    """The workspace's row for this tracker timesheet, created (waiting for data) if new."""
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


def is_stale(ts_row: Timesheet, event: Event) -> bool:
    # Events arrive out of order: an older event never overrides a newer one.
    return ts_row.last_event_at is not None and event.timestamp < ts_row.last_event_at


def apply_approval(
    s: Session,
    workspace: Workspace,
    ts_row: Timesheet,
    event: Event,
    config: Mapping[str, Any],
) -> None:
    """Record an approval's content on the timesheet row under its revision (a changed
    re-approval withdraws the drafts of the one it replaces)."""
    timesheet = trackers.normalize_timesheet(event.source, event.timesheet)
    content_revision = billing.timesheet_revision(timesheet)
    generation = int((ts_row.summary or {}).get("generation", 0))
    revision = effective_revision(content_revision, generation)
    if ts_row.status == TimesheetStatus.APPROVED and ts_row.revision not in (None, revision):
        # Re-approved with other rows while the old approval stood: retire the old drafts.
        withdraw_drafts(s, workspace, ts_row, config, reason="replaced by a newer approval")
        # As after a withdrawal: content approved before (A -> B -> A) needs fresh keys, its
        # old drafts were just voided under the ones it would get again.
        revision = effective_revision(content_revision, start_new_generation(ts_row))
    summary = dict(ts_row.summary or {})
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
    remember_timesheet(ts_row, timesheet)  # planning bills this very content next
    record_tracker_entities(s, workspace.id, timesheet)


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
    timesheet: billing.TimesheetInput, mappings: billing.Mappings
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


# Rows a plan never rewrites: the provider has them, or finance acted on them.
SETTLED = frozenset({DraftStatus.DRAFTED, DraftStatus.VOIDED, DraftStatus.NEEDS_ATTENTION})
# Rows a plan may bring back to pending (a fixed hold, a refusal being retried).
REPLANNED = HOLD_STATUSES | {DraftStatus.FAILED, DraftStatus.SUPERSEDED}

Planned = tuple[str, str, billing.DraftPlan, list[list[str | None]] | None]


def plan_drafts(s: Session, workspace: Workspace, ts_row: Timesheet, *, retry_failed: bool) -> None:
    """Bring the Draft rows of the live revision in line with a fresh billing run.

    Only drafts not yet created at the provider are re-planned. Rows already on a live draft
    (created, or sent with an unknown outcome) are left out of the run, so a mapping, rate or
    settings change never bills an hour of this revision twice; replacing a created draft is an
    explicit re-bill (:func:`rebill_timesheet`), which withdraws it first. Customers come from
    the mappings of the books the workspace bills to now, and each row records those books.
    """
    _Planner(s, workspace, ts_row, retry_failed=retry_failed).run()


class _Planner:
    """One plan of one approval's live revision: what :func:`plan_drafts` does, step by step."""

    def __init__(
        self, s: Session, workspace: Workspace, ts_row: Timesheet, *, retry_failed: bool
    ) -> None:
        assert ts_row.revision is not None and ts_row.content is not None
        self.s, self.workspace, self.ts_row = s, workspace, ts_row
        self.revision = ts_row.revision
        self.books = current_books(s, workspace)
        self.settled = SETTLED if retry_failed else SETTLED | {DraftStatus.FAILED}
        self.existing = {
            d.subject_key: d
            for d in s.scalars(
                select(Draft).where(
                    Draft.timesheet_pk == ts_row.id, Draft.revision == self.revision
                )
            )
        }
        self.coverage = _Coverage(d for d in self.existing.values() if is_live(d))
        self.seen: set[str] = set()

    def run(self) -> None:
        timesheet = timesheet_of(self.ts_row)
        if self.coverage:
            timesheet = replace(
                timesheet,
                rows=tuple(
                    r for r in timesheet.rows if r.billable is False or r not in self.coverage
                ),
            )
        mappings = mappings_in(self.s, self.workspace, self.books)
        rates = load_rates(self.s, self.workspace.id, books_key=self.books)
        result = billing.bill(timesheet, billing_settings(self.workspace), mappings, rates)
        covers = _covers_by_subject(timesheet, mappings)
        for planned in self._split_by_period(timesheet, mappings, result, covers, rates):
            self._plan_draft(*planned)
        holds_by_subject: dict[str, list[billing.Hold]] = {}
        for hold in result.holds:
            holds_by_subject.setdefault(hold.subject_key, []).append(hold)
        for subject, holds in holds_by_subject.items():
            self._plan_hold(subject, holds, covers.get(subject))
        self._supersede_unseen()
        summary = dict(self.ts_row.summary or {})
        summary.update(
            excluded_minutes=result.excluded_minutes,
            excluded_rows=result.excluded_rows,
            held_minutes=result.held_minutes,
        )
        self.ts_row.summary = summary

    # -- rows
    def _free_subject(self, base: str) -> str:
        # A customer whose created draft stays as it is gets the rest of its hours on another
        # draft (customer:<id>+2, +3 ...), never on the created one.
        subject, n = base, 1
        while (row := self.existing.get(subject)) is not None and is_live(row):
            n += 1
            subject = f"{base}+{n}"
        return subject

    def _row_for(self, base: str, key: str, row_covers: list[list[str | None]] | None) -> Draft:
        subject = self._free_subject(base)
        self.seen.add(subject)
        row = self.existing.get(subject)
        if row is None:
            fresh = self.coverage or subject != base
            if fresh or self.revision != self.ts_row.summary.get("content_revision"):
                # The engine's key is derived from the rows it was given; a draft planned beside
                # a live one, or after a re-bill, is named by its subject in the live revision.
                key = self._key(subject)
            row = Draft(
                workspace_id=self.workspace.id,
                timesheet_pk=self.ts_row.id,
                revision=self.revision,
                subject_key=subject,
                key=key,
                status=DraftStatus.PENDING,
                lines=[],
                attempts=0,
            )
            self.s.add(row)
            self.existing[subject] = row
        row.covers = row_covers
        return row

    def _key(self, subject: str) -> str:
        return billing.draft_key(
            str(self.workspace.id), self.ts_row.timesheet_id, self.revision, subject
        )

    def _plan_draft(
        self,
        subject: str,
        key: str,
        draft: billing.DraftPlan,
        draft_covers: list[list[str | None]] | None,
    ) -> None:
        row = self._row_for(subject, key, draft_covers)
        if row.status in self.settled:
            return  # never rewrite what the provider has (or finance acted on)
        row.customer_id = draft.customer.id
        row.customer_name = draft.customer.name
        row.currency = draft.currency
        row.total = draft.total
        row.minutes = draft.minutes
        row.lines = [line_to_json(line) for line in draft.lines]
        row.provider = self.workspace.provider
        row.books = self.books
        if row.status in REPLANNED:
            if row.attempts and row.provider_id is None:
                # The provider refused it (or it was never created), so nothing exists under the
                # old key; the new request goes out under a new key (a provider may replay a
                # refusal).
                row.key = self._key(f"{row.subject_key}#{row.attempts}")
            row.status = DraftStatus.PENDING
            row.hold_reason = row.hold_message = row.error = row.hold_subjects = None

    def _plan_hold(
        self, subject: str, holds: list[billing.Hold], hold_covers: list[list[str | None]] | None
    ) -> None:
        row = self._row_for(subject, holds[0].key, hold_covers)
        if row.status in self.settled:
            return
        customer = holds[0].customer
        row.customer_id = customer.id if customer else None
        row.customer_name = customer.name if customer else None
        row.currency = customer.currency if customer else None
        row.books = self.books if customer else None
        row.minutes = max(h.minutes for h in holds)
        row.total = None
        row.lines = []
        row.status = DraftStatus(holds[0].reason)
        row.hold_reason = holds[0].reason
        row.hold_message = " ".join(dict.fromkeys(h.message for h in holds))
        # What the hold is about, kept so the approval page draws its fixes without billing.
        row.hold_subjects = {
            "project_ids": list(dict.fromkeys(p for h in holds for p in h.project_ids)),
            "client_ids": list(dict.fromkeys(c for h in holds for c in h.client_ids)),
        }
        row.provider = self.workspace.provider
        hint = self._hold_hint(row.status, holds)
        if hint:
            row.hold_message = f"{hint} {row.hold_message}"

    def _hold_hint(self, status: DraftStatus, holds: list[billing.Hold]) -> str | None:
        if status == DraftStatus.NEEDS_RATE:
            # e.g. the tracker hides rates from the connected user: say so, with the fix
            return trackers.rate_hold_hint(self.workspace.id, self.ts_row.source)
        if status == DraftStatus.NEEDS_MAPPING and self.books is None:
            return connect_first(self.workspace)
        if status == DraftStatus.NEEDS_MAPPING:
            subjects = [("client", c) for h in holds for c in h.client_ids]
            subjects += [("project", p) for h in holds for p in h.project_ids]
            return mapped_elsewhere(self.s, self.workspace, self.books, subjects)
        return None

    def _supersede_unseen(self) -> None:
        for subject, row in self.existing.items():
            if subject in self.seen or is_live(row):
                continue
            if (
                row.status in HOLD_STATUSES
                or row.status in TO_PUSH
                or row.status == DraftStatus.FAILED
            ):
                # e.g. an unmapped project's hold, now billed on its customer's draft, or a draft
                # never sent whose rows now go to another customer
                row.status = DraftStatus.SUPERSEDED

    # -- per_period: a timesheet's hours in two periods go on two invoices
    def _split_by_period(
        self,
        timesheet: billing.TimesheetInput,
        mappings: billing.Mappings,
        result: billing.BillingResult,
        covers: dict[str, list[list[str | None]]],
        rates: billing.RateTable,
    ) -> list[Planned]:
        """(subject, key, draft, covers) for each draft to plan.

        A per_period customer whose hours of this timesheet fall in two periods gets one draft
        per period (subject ``customer:<id>@<period start>``), billed from that period's days
        only, so each part goes on its own period's invoice. Everyone else: the engine's drafts
        as they are.
        """
        planned: list[Planned] = []
        for draft in result.drafts:
            base = f"customer:{draft.customer.id}"
            mode, period, week_start = consolidation_of(
                self.s, self.workspace, self.books, draft.customer.id
            )
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
            for first, last in spans:
                planned.extend(
                    self._period_part(timesheet, mappings, rates, base, rows, first, last)
                )
        return planned

    def _period_part(
        self,
        timesheet: billing.TimesheetInput,
        mappings: billing.Mappings,
        rates: billing.RateTable,
        base: str,
        rows: list[billing.TimeRow],
        first: date,
        last: date,
    ) -> list[Planned]:
        part = replace(
            timesheet,
            rows=tuple(r for r in rows if first <= r.date <= last),
            date_from=max(timesheet.date_from, first),
            date_to=min(timesheet.date_to, last),
        )
        billed = billing.bill(part, billing_settings(self.workspace), mappings, rates)
        subject = f"{base}@{first.isoformat()}"
        part_covers: list[list[str | None]] = [
            [pair[0], pair[1], first.isoformat(), last.isoformat()]
            for pair in _covers_by_subject(part, mappings).get(base, [])
        ]
        return [(subject, self._key(subject), d, part_covers) for d in billed.drafts]

"""Hourly rates: the entries an admin or a tracker gives, and the table that finds the one in
force for a member, project, contract and customer on a day (most specific scope first)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Final, NamedTuple

from connector.billing.checks import check_rate
from connector.billing.records import (
    SOURCE_CUSTOMER,
    SOURCE_MEMBER_PROJECT,
    SOURCE_PROJECT,
    SOURCE_WORKSPACE,
)


@dataclass(frozen=True, slots=True)
class RateEntry:
    """An hourly rate. Its scope is implied by which fields are set:

    contract_id (optionally narrowed by member_id/project_id) or member_id+project_id
    -> "member_project"; project_id -> "project"; customer_id -> "customer"; none -> "workspace".
    Other combinations are rejected rather than silently ignored.
    """

    amount: Decimal
    currency: str
    effective_from: date | None = None  # None = since forever
    member_id: str | None = None
    project_id: str | None = None
    contract_id: str | None = None
    customer_id: str | None = None


class FoundRate(NamedTuple):
    """A resolved hourly rate: what RateTable.find() answers, or a row's own rate."""

    amount: Decimal
    currency: str
    source: str  # SOURCE_ROW ... SOURCE_WORKSPACE


_NEVER: Final = date.min
_WORKSPACE_SCOPE: Final = ("workspace",)


@dataclass(frozen=True, slots=True)
class RateTable:
    """Rate entries plus an index built once (entries are validated on construction)."""

    entries: tuple[RateEntry, ...] = ()
    # scope key -> (effective_from days, entries, their rates), sorted by day (then
    # member/project filter).
    _index: dict[tuple, tuple[list[date], list[RateEntry], list[FoundRate]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index: dict[tuple, list[tuple[date, RateEntry]]] = {}
        for entry in self.entries:
            check_rate(entry.amount, entry.currency, "rate entry")
            index.setdefault(_scope_key(entry), []).append((entry.effective_from or _NEVER, entry))
        scopes: dict[tuple, tuple[list[date], list[RateEntry], list[FoundRate]]] = {}
        for key, items in index.items():
            items.sort(key=lambda item: (item[0], _entry_filter(item[1])))
            for (day_a, a), (day_b, b) in pairwise(items):
                same = day_a == day_b and _entry_filter(a) == _entry_filter(b)
                if same and (a.amount != b.amount or a.currency != b.currency):
                    raise ValueError(
                        f"two different rates for the same scope {key} from {day_a}: "
                        f"{a.amount} {a.currency} and {b.amount} {b.currency}"
                    )
            # Days and entries side by side: find() bisects the plain day list (no key function).
            # Each entry's answer is built once here: bill() keeps ~10k timelines of them, and
            # shared objects keep the garbage collector's work per call small.
            source = _SCOPE_SOURCES[key[0]]
            scopes[key] = (
                [day for day, _ in items],
                [entry for _, entry in items],
                [FoundRate(entry.amount, entry.currency, source) for _, entry in items],
            )
        object.__setattr__(self, "_index", scopes)

    def find(
        self,
        day: date,
        member_id: str,
        project_id: str,
        contract_id: str | None,
        customer_id: str,
    ) -> FoundRate | None:
        """The rate in force on `day` in the most specific scope that has one, or None."""
        index = self._index
        for key in _scopes(member_id, project_id, contract_id, customer_id):
            scope = index.get(key)
            if scope is None:
                continue
            days, entries, found = scope
            # Latest effective_from <= day; a scope with no entry in force yet falls through.
            # Walking indices down avoids copying the in-force prefix (this runs per day row).
            for i in range(bisect_right(days, day) - 1, -1, -1):
                entry = entries[i]
                if (entry.member_id is None or entry.member_id == member_id) and (
                    entry.project_id is None or entry.project_id == project_id
                ):
                    return found[i]
        return None

    def timeline(
        self, member_id: str, project_id: str, contract_id: str | None, customer_id: str
    ) -> tuple[tuple[date, ...], tuple[FoundRate | None, ...]]:
        """find() for every day at once: (days, rates) with
        find(day, ...) == rates[bisect_right(days, day)].

        The answer can only change on an effective_from of an entry in one of the scopes find()
        consults, so one find() per such day covers the whole calendar. Before the first of them
        no entry is in force anywhere, hence rates[0] is None.
        """
        changes: set[date] = set()
        for key in _scopes(member_id, project_id, contract_id, customer_id):
            scope = self._index.get(key)
            if scope is not None:
                changes.update(scope[0])
        days = tuple(sorted(changes))
        found = (self.find(day, member_id, project_id, contract_id, customer_id) for day in days)
        return days, (None, *found)


def _scopes(
    member_id: str, project_id: str, contract_id: str | None, customer_id: str
) -> tuple[tuple, ...]:
    # Most specific first. ("contract", None) is never indexed (_scope_key), so a row without a
    # contract falls through to the member/project scope.
    return (
        ("contract", contract_id),
        ("member_project", member_id, project_id),
        ("project", project_id),
        ("customer", customer_id),
        _WORKSPACE_SCOPE,
    )


# The rate source a scope's entries report, by the scope key's kind.
_SCOPE_SOURCES: Final = {
    "contract": SOURCE_MEMBER_PROJECT,
    "member_project": SOURCE_MEMBER_PROJECT,
    "project": SOURCE_PROJECT,
    "customer": SOURCE_CUSTOMER,
    "workspace": SOURCE_WORKSPACE,
}


def _entry_filter(entry: RateEntry) -> tuple[str, str]:
    return (entry.member_id or "", entry.project_id or "")


def _scope_key(entry: RateEntry) -> tuple:
    if entry.contract_id is not None:
        if entry.customer_id is not None:
            raise ValueError(f"a contract rate cannot also name a customer: {entry}")
        return ("contract", entry.contract_id)
    if entry.member_id is not None:
        if entry.project_id is None or entry.customer_id is not None:
            raise ValueError(
                f"a member rate needs a project (or a contract) and no customer: {entry}"
            )
        return ("member_project", entry.member_id, entry.project_id)
    if entry.project_id is not None:
        if entry.customer_id is not None:
            raise ValueError(f"a project rate cannot also name a customer: {entry}")
        return ("project", entry.project_id)
    if entry.customer_id is not None:
        return ("customer", entry.customer_id)
    return _WORKSPACE_SCOPE


Timeline = tuple[tuple[date, ...], tuple[FoundRate | None, ...]]


class TimelineCache(dict[tuple[str, str | None, str], Timeline]):
    """(project, contract, customer) -> RateTable.timeline() for one member, built on first use.

    One bisect per day row instead of a find() per distinct (day, project, contract, customer),
    which is nearly every day row. A dict with __missing__: a hit is a plain dict look-up, no
    Python call per day row. Each distinct timeline is kept once: ~10k keys share a few hundred
    of them, and fewer objects that the garbage collector tracks (FoundRate is a NamedTuple)
    means fewer full collections.
    """

    __slots__ = ("distinct", "member_id", "table")

    def __init__(self, table: RateTable, member_id: str) -> None:
        super().__init__()
        self.table = table
        self.member_id = member_id
        self.distinct: dict[Timeline, Timeline] = {}

    def __missing__(self, key: tuple[str, str | None, str]) -> Timeline:
        project_id, contract_id, customer_id = key
        timeline = self.table.timeline(self.member_id, project_id, contract_id, customer_id)
        timeline = self[key] = self.distinct.setdefault(timeline, timeline)
        return timeline

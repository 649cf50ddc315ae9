"""What one bill() call accumulates per customer and project while it walks the day rows:
the lines in columns, the time that found no rate or no customer, and the display names.
Mutable and private to one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from connector.billing.records import BillingSettings, Customer


class LineColumns:
    """One customer's lines while day rows accumulate into them, a list per field: line i is
    (billed[i], tracked[i], first[i], ...), and ``index`` maps a line key to its i.

    Columns rather than an object per line: the garbage collector tracks every instance of a
    class, dataclass or NamedTuple (it untracks only exact tuples of plain values), and the
    ~100k of them in the "detailed" grouping cost two more full collections per bill() call
    (15-20% slower on the 100,000-row benchmark). Lists of ints, dates and strings add no
    tracked object per line.
    """

    __slots__ = (
        "billed",
        "first",
        "index",
        "last",
        "project_id",
        "rate",
        "source",
        "task_id",
        "tracked",
    )

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}  # line key (per grouping) -> line number
        self.billed: list[int] = []  # each day row rounded up to the increment, then summed
        self.tracked: list[int] = []
        self.first: list[date] = []
        self.last: list[date] = []
        self.project_id: list[str] = []
        self.task_id: list[str | None] = []  # None unless the grouping is "task" or "detailed"
        self.rate: list[Decimal] = []  # the hourly rate's amount, as found
        self.source: list[str] = []  # the rate's source

    def add(
        self,
        key: tuple,
        billed: int,
        tracked: int,
        day: date,
        project_id: str,
        task_id: str | None,
        rate: Decimal,
        source: str,
    ) -> None:
        i = self.index.get(key)
        if i is None:
            self.index[key] = len(self.billed)
            self.billed.append(billed)
            self.tracked.append(tracked)
            self.first.append(day)
            self.last.append(day)
            self.project_id.append(project_id)
            self.task_id.append(task_id)
            self.rate.append(rate)
            self.source.append(source)
            return
        self.billed[i] += billed
        self.tracked[i] += tracked
        if day < self.first[i]:
            self.first[i] = day
        elif day > self.last[i]:
            self.last[i] = day

    def clear(self) -> None:
        self.index.clear()
        for column in (
            self.billed,
            self.tracked,
            self.first,
            self.last,
            self.project_id,
            self.task_id,
            self.rate,
            self.source,
        ):
            column.clear()


@dataclass(slots=True)
class MissingRate:
    """A project's time that found no rate, for the customer's needs_rate hold."""

    tracked: int
    first: date
    last: date
    client_ids: set[str]

    def add(self, tracked: int, day: date, client_id: str | None) -> None:
        self.tracked += tracked
        if day < self.first:
            self.first = day
        elif day > self.last:
            self.last = day
        if client_id is not None:
            self.client_ids.add(client_id)


@dataclass(slots=True)
class UnmappedProject:
    """A project's time that resolved to no customer, for its needs_mapping hold."""

    tracked: int = 0
    client_ids: set[str] = field(default_factory=set)


def add_unmapped(
    unmapped: dict[str, UnmappedProject], project_id: str, tracked: int, client_id: str | None
) -> None:
    """Count a day row that resolved to no customer toward its project's needs_mapping hold."""
    group = unmapped.get(project_id)
    if group is None:
        group = unmapped[project_id] = UnmappedProject()
    group.tracked += tracked
    if client_id is not None:
        group.client_ids.add(client_id)


class CustomerAccumulator:
    """Mutable per-customer accumulator, private to one bill() call."""

    __slots__ = (
        "client_ids",
        "customer",
        "grouping",
        "increment",
        "lines",
        "mismatch",
        "missing",
        "tracked",
    )

    def __init__(self, customer: Customer, settings: BillingSettings) -> None:
        self.customer = customer
        # The customer's own setting, else the workspace's.
        self.grouping = customer.grouping or settings.grouping
        self.increment = customer.billing_increment or settings.billing_increment
        self.lines = LineColumns()
        self.missing: dict[str, MissingRate] = {}  # project_id -> its time without a rate
        # (rate currency, source) -> {project_id: tracked minutes}
        self.mismatch: dict[tuple[str, str], dict[str, int]] = {}
        self.tracked = 0
        self.client_ids: set[str] = set()

    def add_missing_rate(
        self, project_id: str, tracked: int, day: date, client_id: str | None
    ) -> None:
        missing = self.missing.get(project_id)
        if missing is None:
            missing = self.missing[project_id] = MissingRate(0, day, day, set())
        missing.add(tracked, day, client_id)

    def add_mismatch(self, currency: str, source: str, project_id: str, tracked: int) -> None:
        per_project = self.mismatch.setdefault((currency, source), {})
        per_project[project_id] = per_project.get(project_id, 0) + tracked


class DisplayNames:
    """The display names on the day rows, kept per owning customer (None for unmapped rows) so
    that another customer's rows can never rename a project on this customer's draft.

    The name from the latest day (ties: the greatest name) wins, so that renames mid-period
    resolve the same way whatever the row order.
    """

    __slots__ = ("clients", "projects", "tasks")

    def __init__(self) -> None:
        # (owner customer id or None, project/client/task id) -> (day, name)
        self.projects: dict[tuple[str | None, str], tuple[date, str]] = {}
        self.clients: dict[tuple[str | None, str], tuple[date, str]] = {}
        self.tasks: dict[tuple[str | None, str], tuple[date, str]] = {}

    def project_label(self, owner: str | None, project_id: str) -> str:
        return f"{self.projects[owner, project_id][1]} ({project_id})"

    def client_label(self, owner: str | None, client_id: str) -> str:
        return f"{self.clients[owner, client_id][1]} ({client_id})"


def keep_latest_name(names: dict, key: tuple, day: date, name: str) -> None:
    # A function, not a DisplayNames method: it runs up to three times per day row.
    candidate = (day, name)
    current = names.get(key)
    if current is None or candidate > current:
        names[key] = candidate

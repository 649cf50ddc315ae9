"""Pins for the "detailed" grouping and for the shortcuts bill() takes to stay fast on it.

Each shortcut (shared pricing cache, rate timelines, revision tokens spelled out without
tuples) must give exactly what the plain computation gives; these tests say so explicitly.
"""

import hashlib
from bisect import bisect_right
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from connector.billing import (
    Client,
    Customer,
    Member,
    Money,
    PlannedLine,
    RateEntry,
    RateTable,
    Task,
    TimeRow,
    TimesheetInput,
    timesheet_revision,
)
from connector.billing.keys import canonical_decimal
from tests.billing.test_billing_cases import ACME, NOV, only_draft, rates, row, run

D = Decimal
DESIGN = Task("ta", "Design")


def test_detailed_result_is_pinned() -> None:
    # Workspace 27.50 USD; Mobile (p2) 40 USD from Thu 5; increment 15 (rounded up per day row).
    table = rates(("27.50", "USD"), ("40", "USD", NOV[3], None, "p2"))
    draft = only_draft(
        run(
            row(2, 50, task=DESIGN),
            row(2, 20, task=DESIGN),  # same day row as the one above: 70 -> 75 min
            row(3, 10),  # 10 -> 15 min
            row(4, 50, project="p2"),  # before the Mobile rate: workspace rate
            row(5, 50, project="p2"),
            row(5, 31, rate=Money(D("30"), "USD")),  # 31 -> 45 min at the row's own rate
            table=table,
            projects={"p1": ACME, "p2": ACME},
            grouping="detailed",
            increment=15,
        )
    )

    def line(desc, billed, qty, price, amount, day, pid, pname, task, source, tracked):
        return PlannedLine(
            description=f"Ada Lovelace — {desc}",
            minutes=billed,
            quantity=D(qty),
            unit_price=D(price),
            amount=D(amount),
            service_date=NOV[day - 2],
            date_from=NOV[day - 2],
            date_to=NOV[day - 2],
            project_id=pid,
            project_name=pname,
            task_name=None if task is None else task.name,
            rate_source=source,
            tracked_minutes=tracked,
            task_id=None if task is None else task.id,
        )

    # Sorted by project name, then task ("" before "Design"), then date.
    assert draft.lines == (
        # 60 x 27.50 / 60 = 27.50
        line("Mobile — 2026-11-04 — 1 h", 60, "1.00", "27.50", "27.50", 4, "p2", "Mobile",
             None, "workspace", 50),
        # 60 x 40 / 60 = 40.00
        line("Mobile — 2026-11-05 — 1 h", 60, "1.00", "40.00", "40.00", 5, "p2", "Mobile",
             None, "project", 50),
        # 15 x 27.50 / 60 = 6.875 -> 6.88 ; 0.25 x 27.50 = 6.875 -> 6.88
        line("Website — 2026-11-03 — 15 min", 15, "0.25", "27.50", "6.88", 3, "p1", "Website",
             None, "workspace", 10),
        # 45 x 30 / 60 = 22.50
        line("Website — 2026-11-05 — 45 min", 45, "0.75", "30.00", "22.50", 5, "p1", "Website",
             None, "row", 31),
        # 75 x 27.50 / 60 = 34.375 -> 34.38 ; 1.25 x 27.50 = 34.375 -> 34.38
        line("Website (Design) — 2026-11-02 — 1 h 15 min", 75, "1.25", "27.50", "34.38", 2,
             "p1", "Website", DESIGN, "workspace", 70),
    )  # fmt: skip
    assert str(draft.total) == "131.26"
    assert (draft.minutes, draft.tracked_minutes) == (255, 211)


def test_pricing_is_not_shared_across_currencies() -> None:
    # Same minutes and the same rate value on two customers: the pricing cache is keyed by
    # currency too, so JPY rounds to whole yen while USD keeps cents.
    yen = Customer("cu-yen", "Yen Co", "JPY")
    table = rates(("1000.5", "USD", None, None, None, None, "cu-acme"),
                  ("1000.5", "JPY", None, None, None, None, "cu-yen"))  # fmt: skip
    result = run(
        row(2, 50),
        row(2, 50, project="p2"),
        table=table,
        projects={"p1": ACME, "p2": yen},
        grouping="detailed",
    )
    # 50 x 1000.5 / 60 = 833.75
    assert [(d.currency, str(d.lines[0].unit_price), str(d.total)) for d in result.drafts] == [
        ("USD", "1000.50", "833.75"),
        ("JPY", "1000.5", "834"),
    ]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),  # effective_from as a day offset (0 = since forever)
            st.sampled_from(["contract", "member_project", "project", "customer", "workspace"]),
            st.sampled_from(["m1", "m2"]),
            st.sampled_from(["p1", "p2"]),
            st.sampled_from(["10", "20", "30", "1000"]),
            st.sampled_from(["USD", "JPY"]),
        ),
        max_size=12,
    ),
    st.sampled_from(["p1", "p2"]),
    st.sampled_from([None, "k1"]),
)
def test_rate_timeline_agrees_with_find(raw, project_id, contract_id) -> None:
    start = date(2026, 1, 1)
    entries = {}
    for offset, scope, member_id, project, amount, currency in raw:
        effective = None if offset == 0 else start + timedelta(days=offset)
        fields = {
            "contract": {"contract_id": "k1", "member_id": member_id},
            "member_project": {"member_id": member_id, "project_id": project},
            "project": {"project_id": project},
            "customer": {"customer_id": "cu1"},
            "workspace": {},
        }[scope]
        # One entry per scope, filter and day: two different rates there are rejected.
        key = (effective, scope, tuple(sorted(fields.items())))
        entries[key] = RateEntry(D(amount), currency, effective, **fields)
    table = RateTable(tuple(entries.values()))
    days, found = table.timeline("m1", project_id, contract_id, "cu1")
    for offset in range(-1, 45):
        day = start + timedelta(days=offset)
        expected = table.find(day, "m1", project_id, contract_id, "cu1")
        assert found[bisect_right(days, day)] == expected
    assert (
        table.find(date.min, "m1", project_id, contract_id, "cu1")
        == found[bisect_right(days, date.min)]
    )


def _revision_token_as_tuple(row: TimeRow) -> str:
    # The token format of revision v1, written the plain way: repr() of a tuple.
    rate, client, task = row.rate, row.client, row.task
    return repr(
        (
            row.date.isoformat(),
            row.project_id,
            row.project_name,
            row.minutes,
            row.contract_id,
            row.billable,
            None if rate is None else (canonical_decimal(rate.amount), rate.currency),
            None if client is None else (client.id, client.name, client.email),
            None if task is None else (task.id, task.name),
        )
    )


def test_revision_token_format() -> None:
    member = Member("m'1", 'Ada "Countess" Lovelace', "ada@example.com")
    rows = (
        TimeRow(NOV[0], "p1", "Web'site\n", 50),
        TimeRow(NOV[1], "p\"2", "Mobile — ü", 0, "k'1", True, Money(D("27.50"), "USD"),
                Client("c\\1", "Umbrella\t", "x@y.z"), Task("t'1", "Design\r\n")),
        TimeRow(NOV[1], "p3", "", 5, None, False, Money(D("1E+2"), "JPY"),
                Client("c2", "Acme", None), None),
    )  # fmt: skip
    sheet = TimesheetInput("ts-1", member, NOV[0], NOV[-1], rows)
    header = repr(
        ("timesheet-revision-v1", member.id, member.name, member.email, "2026-11-02", "2026-11-08")
    )
    digest = hashlib.sha256(header.encode())
    for token in sorted(_revision_token_as_tuple(r) for r in rows):
        digest.update(b"\n" + token.encode())
    assert timesheet_revision(sheet) == "rev1-" + digest.hexdigest()[:40]


def test_detailed_lines_that_round_up_alike_keep_one_order_whatever_the_row_order() -> None:
    # Same day, project and rate under two contracts: 25 and 28 tracked minutes both bill 30
    # with a 15-minute increment, so only the tracked minutes tell the two lines apart.
    a = row(2, 25, contract_id="c-1")
    b = row(2, 28, contract_id="c-2")
    forward = only_draft(run(a, b, grouping="detailed", increment=15))
    backward = only_draft(run(b, a, grouping="detailed", increment=15))
    assert forward.lines == backward.lines
    assert [line.tracked_minutes for line in forward.lines] == [25, 28]

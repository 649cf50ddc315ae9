"""Table-driven billing cases with hand-computed amounts (comments show the arithmetic)."""

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from connector.billing import (
    BillingResult,
    BillingSettings,
    Client,
    Customer,
    DraftPlan,
    Mappings,
    Member,
    Money,
    RateEntry,
    RateTable,
    Task,
    TimeRow,
    TimesheetInput,
    bill,
    draft_key,
    timesheet_revision,
)

D = Decimal
ADA = Member("m1", "Ada Lovelace", "ada@example.com")
ACME = Customer("cu-acme", "Acme", "USD")
NOV = [date(2026, 11, d) for d in range(2, 9)]  # Mon 2 .. Sun 8


def row(day: int, minutes: int, project: str = "p1", **kw: object) -> TimeRow:
    names = {"p1": "Website", "p2": "Mobile", "p3": "Audit", "p9": "Skunkworks"}
    return TimeRow(date(2026, 11, day), project, names.get(project, project), minutes, **kw)  # type: ignore[arg-type]


def sheet(*rows: TimeRow, id: str = "ts-1") -> TimesheetInput:
    return TimesheetInput(id, ADA, NOV[0], NOV[-1], tuple(rows))


def rates(*entries: tuple) -> RateTable:
    return RateTable(tuple(RateEntry(D(a), c, *rest) for a, c, *rest in entries))


def run(
    *rows: TimeRow,
    table: RateTable | None = None,
    projects: dict | None = None,
    clients: dict | None = None,
    grouping: str = "project",
    increment: int | None = None,
) -> BillingResult:
    return bill(
        sheet(*rows),
        BillingSettings("ws-1", grouping, increment),
        Mappings({"p1": ACME} if projects is None else projects, clients or {}),
        table if table is not None else rates(("27.50", "USD")),
    )


def only_draft(result: BillingResult) -> DraftPlan:
    assert result.holds == ()
    assert len(result.drafts) == 1
    return result.drafts[0]


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("minutes", "rate", "currency", "amount", "quantity"),
    [
        # 50 x 27.50 / 60 = 22.9166.. ; 0.83 x 27.5 = 22.825 (no), 0.833 -> 22.9075 (no),
        # 0.8333 x 27.5 = 22.91575 -> 22.92
        (50, "27.50", "USD", "22.92", "0.8333"),
        # 0.4583.. ; 0.02 -> 0.55 (no), 0.017 -> 0.4675 -> 0.47 (no), 0.0167 -> 0.45925 -> 0.46
        (1, "27.50", "USD", "0.46", "0.0167"),
        (6, "24.65", "USD", "2.47", "0.10"),  # exactly 2.465 -> 2.47 half-up (half-even: 2.46)
        (60, "10", "USD", "10.00", "1.00"),
        (530, "90", "USD", "795.00", "8.8333"),  # 8 h 50 min x 90 = 795 ; 8.83 x 90 = 794.70 (no)
        # 833.33.. -> 833 ; 0.83 x 1000 = 830, 0.833 x 1000 = 833
        (50, "1000", "JPY", "833", "0.833"),
        # exactly 500.5 -> 501 ; 0.50 x 1001 = 500.5 -> 501 at yen precision (QuickBooks, which
        # compares at 2 decimals, re-derives its own pair: test_quickbooks_line_numbers.py)
        (30, "1001", "JPY", "501", "0.50"),
        # 617.25 / 60 = 10.2875 -> 10.288 ; rounded hours always land on 10.287 (a tie rounded
        # down), so 10.288 / 12.345 = 0.83337383.. -> 0.8333738 x 12.345 = 10.28799.. -> 10.288
        (50, "12.345", "KWD", "10.288", "0.8333738"),
    ],
)  # fmt: skip
def test_single_line_amounts(
    minutes: int, rate: str, currency: str, amount: str, quantity: str
) -> None:
    customer = Customer("cu-x", "X", currency)
    result = run(row(2, minutes), table=rates((rate, currency)), projects={"p1": customer})
    draft = only_draft(result)
    (line,) = draft.lines
    assert str(line.amount) == amount
    assert str(draft.total) == amount
    assert str(line.quantity) == quantity
    assert draft.currency == currency
    assert line.minutes == minutes


def test_description_and_line_fields() -> None:
    # 8 h 50 min over the week at 27.50 = 530 x 27.5 / 60 = 242.9166.. -> 242.92
    result = run(row(2, 300), row(8, 230))
    (line,) = only_draft(result).lines
    assert line.description == "Ada Lovelace — Website — 2026-11-02..2026-11-08 — 8 h 50 min"
    assert (line.date_from, line.date_to, line.service_date) == (NOV[0], NOV[-1], None)
    assert str(line.unit_price) == "27.50"
    assert str(line.amount) == "242.92"
    assert line.rate_source == "workspace"


def test_many_tiny_rows() -> None:
    # 60 rows of 1 min at 10.00 on 60 different tasks of one day.
    tiny = [row(3, 1, task=Task(f"t{i:02}", f"Task {i:02}")) for i in range(60)]
    table = rates(("10.00", "USD"))
    by_project = only_draft(run(*tiny, table=table))
    assert [str(x.amount) for x in by_project.lines] == ["10.00"]  # 60 min x 10 / 60
    assert by_project.lines[0].service_date == NOV[1]  # one day only
    for grouping in ("detailed", "task"):
        draft = only_draft(run(*tiny, table=table, grouping=grouping))
        assert len(draft.lines) == 60
        assert {str(x.amount) for x in draft.lines} == {"0.17"}  # 0.1666.. each
        assert str(draft.total) == "10.20"  # 60 x 0.17: per-line rounding, declared
        assert draft.minutes == 60


def test_mixed_billable() -> None:
    result = run(row(2, 120), row(3, 30, billable=False), row(4, 45, billable=True))
    draft = only_draft(result)
    assert draft.minutes == 165
    assert str(draft.total) == "75.63"  # 165 x 27.5 / 60 = 75.625 -> 75.63 half-up
    assert (result.excluded_minutes, result.excluded_rows) == (30, 1)


def test_non_billable_unmapped_rows_are_excluded_not_held() -> None:
    result = run(row(2, 60), row(2, 40, project="p9", billable=False))
    assert only_draft(result).minutes == 60
    assert result.excluded_minutes == 40


# --------------------------------------------------------------------------- rates

# Every level present from the least specific up to the level under test; 60-min rows make the
# amount equal to the rate.
LEVELS = [
    ("workspace", ("10", "USD")),
    ("customer", ("20", "USD", None, None, None, None, "cu-acme")),
    ("project", ("30", "USD", None, None, "p1")),
    ("member_project", ("40", "USD", None, "m1", "p1")),
    ("contract", ("50", "USD", None, None, None, "k1")),
]


@pytest.mark.parametrize("level", range(len(LEVELS)))
def test_rate_precedence(level: int) -> None:
    table = rates(*(entry for _, entry in LEVELS[: level + 1]))
    (line,) = only_draft(run(row(2, 60, contract_id="k1"), table=table)).lines
    expected_source = {"contract": "member_project"}.get(LEVELS[level][0], LEVELS[level][0])
    assert line.rate_source == expected_source
    assert line.amount == D(LEVELS[level][1][0])


def test_row_rate_beats_every_table_entry() -> None:
    table = rates(*(entry for _, entry in LEVELS))
    result = run(row(2, 60, contract_id="k1", rate=Money(D("60"), "USD")), table=table)
    (line,) = only_draft(result).lines
    assert (line.rate_source, str(line.amount)) == ("row", "60.00")


def test_more_specific_entries_of_other_scopes_do_not_apply() -> None:
    table = rates(
        ("10", "USD"),
        ("99", "USD", None, "m2", "p1"),  # another member
        ("98", "USD", None, None, "p2"),  # another project
        ("97", "USD", None, None, None, "k2"),  # another contract
        ("96", "USD", None, None, None, None, "cu-other"),  # another customer
    )
    (line,) = only_draft(run(row(2, 60, contract_id="k1"), table=table)).lines
    assert (line.rate_source, str(line.amount)) == ("workspace", "10.00")


def test_rate_change_mid_period_gives_two_lines() -> None:
    table = rates(("100", "USD", None, None, "p1"), ("120", "USD", date(2026, 11, 5), None, "p1"))
    draft = only_draft(run(*(row(d.day, 60) for d in NOV), table=table))
    got = [(x.date_from.day, x.date_to.day, str(x.unit_price), str(x.amount)) for x in draft.lines]
    assert got == [
        (2, 4, "100.00", "300.00"),  # 3 days x 1 h x 100
        (5, 8, "120.00", "480.00"),  # 4 days x 1 h x 120
    ]
    assert str(draft.total) == "780.00"


def test_specific_scope_not_yet_in_force_falls_back() -> None:
    table = rates(
        ("100", "USD", None, None, "p1"),
        ("150", "USD", date(2026, 11, 7), "m1", "p1"),
    )
    draft = only_draft(run(*(row(d.day, 60) for d in NOV), table=table))
    got = [(x.rate_source, x.date_from.day, x.date_to.day, str(x.amount)) for x in draft.lines]
    assert got == [("project", 2, 6, "500.00"), ("member_project", 7, 8, "300.00")]


def test_conflicting_rate_entries_are_rejected() -> None:
    with pytest.raises(ValueError, match="two different rates"):
        rates(("10", "USD", None, None, "p1"), ("11", "USD", None, None, "p1"))


@pytest.mark.parametrize(
    "entry",
    [
        ("10", "USD", None, "m1"),  # member without project
        ("10", "USD", None, None, "p1", None, "cu-acme"),  # project and customer
        ("-1", "USD"),
        ("1.00000001", "USD"),  # QuickBooks takes 7 decimals
        ("100001", "USD"),  # no exact 7-decimal quantity possible
        ("10", "usd"),
    ],
)
def test_invalid_rate_entries_are_rejected(entry: tuple) -> None:
    with pytest.raises(ValueError):
        rates(entry)


# --------------------------------------------------------------------------- increments


@pytest.mark.parametrize(
    ("increment", "minutes", "amount"),
    [
        (None, 100, "45.83"),  # 100 x 27.5 / 60 = 45.8333..
        (1, 100, "45.83"),
        (6, 108, "49.50"),  # 50 -> 54 per day: 108 x 27.5 / 60 = 49.50
        (15, 120, "55.00"),  # 50 -> 60 per day: 2 h x 27.50
    ],
)
def test_billing_increment_rounds_each_day_up(
    increment: int | None, minutes: int, amount: str
) -> None:
    draft = only_draft(run(row(2, 50), row(3, 50), increment=increment))
    assert (draft.minutes, str(draft.total), draft.tracked_minutes) == (minutes, amount, 100)


def test_increment_applies_to_the_day_not_to_each_fragment() -> None:
    # Two fragments of the same day row (25 + 25) round once: 50 -> 60, not 30 + 30.
    draft = only_draft(run(row(2, 25), row(2, 25), increment=15))
    assert draft.minutes == 60


def test_customer_overrides_grouping_and_increment() -> None:
    picky = replace(ACME, grouping="project_day", billing_increment=15)
    draft = only_draft(run(row(2, 50), row(3, 7), projects={"p1": picky}, increment=6))
    assert [(x.minutes, str(x.amount)) for x in draft.lines] == [(60, "27.50"), (15, "6.88")]
    # 15 x 27.5 / 60 = 6.875 -> 6.88


# --------------------------------------------------------------------------- grouping

GROUPING_ROWS = (
    row(2, 60, task=Task("ta", "Design")),
    row(2, 30, task=Task("tb", "Build")),
    row(3, 30, task=Task("ta", "Design")),
)


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        ("project", [("Website", None, 2, 3, 120)]),
        ("project_day", [("Website", None, 2, 2, 90), ("Website", None, 3, 3, 30)]),
        ("task", [("Website", "Build", 2, 2, 30), ("Website", "Design", 2, 3, 90)]),
        (
            "detailed",
            [("Website", "Build", 2, 2, 30), ("Website", "Design", 2, 2, 60),
             ("Website", "Design", 3, 3, 30)],
        ),
    ],
)  # fmt: skip
def test_groupings(grouping: str, expected: list) -> None:
    # 60.00/h so that each amount equals its minutes.
    draft = only_draft(run(*GROUPING_ROWS, table=rates(("60", "USD")), grouping=grouping))
    got = [
        (x.project_name, x.task_name, x.date_from.day, x.date_to.day, x.minutes)
        for x in draft.lines
    ]
    assert got == expected
    assert [x.amount for x in draft.lines] == [D(m) for *_, m in expected]
    assert str(draft.total) == "120.00"


def test_task_line_description() -> None:
    draft = only_draft(run(*GROUPING_ROWS, grouping="detailed"))
    assert draft.lines[0].description == "Ada Lovelace — Website (Build) — 2026-11-02 — 30 min"
    assert draft.lines[0].service_date == date(2026, 11, 2)


def test_different_rates_never_share_a_line() -> None:
    result = run(row(2, 60), row(3, 60, rate=Money(D("30"), "USD")))
    assert [(x.rate_source, str(x.amount)) for x in only_draft(result).lines] == [
        ("workspace", "27.50"),
        ("row", "30.00"),
    ]


# --------------------------------------------------------------------------- customers and holds


def test_three_customers_three_drafts() -> None:
    globex = Customer("cu-globex", "Globex", "EUR")
    initech = Customer("cu-initech", "Initech", "JPY")
    table = rates(
        ("27.50", "USD", None, None, None, None, "cu-acme"),
        ("40", "EUR", None, None, None, None, "cu-globex"),
        ("5000", "JPY", None, None, None, None, "cu-initech"),
    )
    result = run(
        row(2, 50),
        row(3, 90, project="p2"),
        row(4, 20, project="p3", client=Client("cl-3", "Initech Ltd")),
        table=table,
        projects={"p1": ACME, "p2": globex},
        clients={"cl-3": initech},
    )
    assert result.holds == ()
    assert [(d.customer.id, d.currency, d.minutes, str(d.total)) for d in result.drafts] == [
        ("cu-acme", "USD", 50, "22.92"),
        ("cu-globex", "EUR", 90, "60.00"),  # 1.5 h x 40
        ("cu-initech", "JPY", 20, "1667"),  # 20 x 5000 / 60 = 1666.67
    ]
    assert len({d.key for d in result.drafts}) == 3


def test_project_mapping_beats_client_mapping() -> None:
    other = Customer("cu-other", "Other", "USD")
    result = run(row(2, 60, client=Client("cl-1", "C")), clients={"cl-1": other})
    assert only_draft(result).customer == ACME


def test_needs_mapping_hold_names_project_and_client() -> None:
    result = run(row(2, 60), row(3, 45, project="p9", client=Client("cl-9", "Umbrella")))
    assert [d.minutes for d in result.drafts] == [60]
    (hold,) = result.holds
    assert (hold.reason, hold.subject_key, hold.customer, hold.minutes) == (
        "needs_mapping", "project:p9", None, 45)  # fmt: skip
    assert (hold.project_ids, hold.client_ids) == (("p9",), ("cl-9",))
    assert "Skunkworks" in hold.message and "Umbrella" in hold.message
    assert "Ada Lovelace" in hold.message
    assert result.held_minutes == 45


def test_needs_rate_holds_whole_draft() -> None:
    table = rates(("27.50", "USD", None, None, "p1"))  # nothing for p2
    result = run(
        row(2, 60), row(3, 30, project="p2"), table=table, projects={"p1": ACME, "p2": ACME}
    )
    assert result.drafts == ()  # never a partial invoice, never a silent 0.00 line
    (hold,) = result.holds
    assert (hold.reason, hold.subject_key, hold.minutes, hold.project_ids) == (
        "needs_rate", "customer:cu-acme", 30, ("p2",))  # fmt: skip
    assert "Ada Lovelace" in hold.message and "Mobile" in hold.message
    assert hold.key == draft_key("ws-1", "ts-1", result.revision, "cu-acme")
    assert result.held_minutes == 90


def test_currency_mismatch_is_held_not_converted() -> None:
    result = run(row(2, 60), table=rates(("27.50", "EUR")))
    assert result.drafts == ()
    (hold,) = result.holds
    assert (hold.reason, hold.currencies, hold.customer) == ("currency_mismatch", ("EUR",), ACME)
    assert "USD" in hold.message and "EUR" in hold.message and "Website" in hold.message


def test_all_hold_reasons_are_listed() -> None:
    table = rates(("27.50", "EUR", None, None, "p1"))
    result = run(
        row(2, 60), row(3, 30, project="p2"), table=table, projects={"p1": ACME, "p2": ACME}
    )
    assert [h.reason for h in result.holds] == ["needs_rate", "currency_mismatch"]
    assert {h.subject_key for h in result.holds} == {"customer:cu-acme"}
    assert result.held_minutes == 90


def test_a_held_customer_does_not_hold_others() -> None:
    globex = Customer("cu-globex", "Globex", "EUR")
    result = run(row(2, 60), row(3, 60, project="p2"), projects={"p1": ACME, "p2": globex})
    assert [d.customer.id for d in result.drafts] == ["cu-acme"]
    assert [(h.reason, h.subject_key) for h in result.holds] == [
        ("currency_mismatch", "customer:cu-globex")
    ]


def test_zero_minutes_make_no_draft() -> None:
    result = run(row(2, 0), row(3, 0, project="p9"), table=RateTable())
    assert (result.drafts, result.holds) == ((), ())


def test_negative_minutes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"negative minutes \(-5\) for project Website"):
        run(row(2, -5))


def test_rows_outside_the_period_are_rejected() -> None:
    bad = TimeRow(date(2026, 11, 9), "p1", "Website", 10)
    with pytest.raises(ValueError, match="outside timesheet"):
        run(bad)


def test_unknown_grouping_is_rejected() -> None:
    with pytest.raises(ValueError, match="grouping"):
        run(row(2, 10), grouping="weekly")


# --------------------------------------------------------------------------- revisions and keys


def test_revision_ignores_order_and_approval_time() -> None:
    rows = (row(2, 60), row(3, 30, project="p2"), row(4, 15, task=Task("t", "T")))
    base = sheet(*rows)
    shuffled = sheet(*reversed(rows))
    reapproved = replace(base, approved_at=datetime(2026, 11, 9, 12, 0))
    assert (
        timesheet_revision(base) == timesheet_revision(shuffled) == timesheet_revision(reapproved)
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda s: replace(s, rows=(*s.rows[:-1], replace(s.rows[-1], minutes=61))),
        lambda s: replace(s, rows=(*s.rows, row(5, 1))),
        lambda s: replace(s, rows=s.rows[:-1]),
        lambda s: replace(s, rows=(*s.rows, s.rows[0])),  # a duplicated row is new content
        lambda s: replace(s, rows=(*s.rows[:-1], replace(s.rows[-1], billable=False))),
        lambda s: replace(s, rows=(*s.rows[:-1], replace(s.rows[-1], rate=Money(D("1"), "USD")))),
        lambda s: replace(s, member=Member("m2", "Grace Hopper")),
        lambda s: replace(s, date_to=date(2026, 11, 9)),
    ],
)
def test_changed_content_changes_revision(change) -> None:
    base = sheet(row(2, 60), row(3, 60))
    assert timesheet_revision(change(base)) != timesheet_revision(base)


def test_equal_rates_spelled_differently_give_the_same_revision() -> None:
    a = sheet(row(2, 60, rate=Money(D("27.5"), "USD")))
    b = sheet(row(2, 60, rate=Money(D("27.50"), "USD")))
    assert timesheet_revision(a) == timesheet_revision(b)


def test_draft_key_shape_and_determinism() -> None:
    key = draft_key("ws-1", "ts-1", "rev", "cu-acme")
    assert key == draft_key("ws-1", "ts-1", "rev", "cu-acme")
    assert len(key) <= 50
    assert key.startswith("ti-")
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    others = {
        draft_key("ws-2", "ts-1", "rev", "cu-acme"),
        draft_key("ws-1", "ts-2", "rev", "cu-acme"),
        draft_key("ws-1", "ts-1", "rev2", "cu-acme"),
        draft_key("ws-1", "ts-1", "rev", "cu-other"),
    }
    assert key not in others and len(others) == 4


def test_same_content_in_any_order_gives_same_result() -> None:
    rows = [row(d.day, 37 + d.day, project=p) for d in NOV for p in ("p1", "p2", "p9")]
    forward = run(*rows, projects={"p1": ACME, "p2": ACME})
    backward = run(*reversed(rows), projects={"p1": ACME, "p2": ACME})
    assert forward == backward


def test_docs_worked_example() -> None:
    # docs/billing.md "Worked example": keep the two in step.
    result = run(
        row(2, 50),
        row(3, 50),
        row(4, 30, billable=False),
        row(5, 45, project="p9", client=Client("cl-9", "Umbrella")),
        increment=6,
    )
    (draft,) = result.drafts
    (line,) = draft.lines
    assert line.description == "Ada Lovelace — Website — 2026-11-02..2026-11-03 — 1 h 48 min"
    assert (str(line.quantity), str(line.amount), str(draft.total)) == ("1.80", "49.50", "49.50")
    assert (draft.tracked_minutes, result.held_minutes, result.excluded_minutes) == (100, 45, 30)
    assert [h.subject_key for h in result.holds] == ["project:p9"]

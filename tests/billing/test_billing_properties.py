"""Hypothesis properties of bill(): conservation, isolation, order independence, exact qty."""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.billing import (
    QUANTITY_DECIMALS,
    BillingResult,
    BillingSettings,
    Client,
    Customer,
    Mappings,
    Member,
    Money,
    RateEntry,
    RateTable,
    Task,
    TimeRow,
    TimesheetInput,
    bill,
    check_rate,
    line_quantity,
)
from connector.money import line_amount, minor_units, quantize_money

D = Decimal
START = date(2026, 11, 2)
CUSTOMERS = {
    "A": Customer("A", "Acme", "USD"),
    "B": Customer("B", "Bento", "JPY", grouping="detailed"),
    "C": Customer("C", "Cairo Oil", "KWD", billing_increment=15),
    "D": Customer("D", "Dresden", "EUR", grouping="task"),
}
MAPPINGS = Mappings(
    projects={"p0": CUSTOMERS["A"], "p1": CUSTOMERS["B"], "p2": CUSTOMERS["C"]},
    clients={"cl0": CUSTOMERS["D"], "cl1": CUSTOMERS["A"]},  # cl2 is unmapped
)
RATE_POOL = (
    RateEntry(D("27.50"), "USD"),
    RateEntry(D("31.25"), "USD", START + timedelta(days=3)),
    RateEntry(D("4500"), "JPY", None, customer_id="B"),
    RateEntry(D("12.345"), "KWD", None, project_id="p2"),
    RateEntry(D("13"), "KWD", START + timedelta(days=2), project_id="p2"),
    RateEntry(D("88.8"), "EUR", None, customer_id="D"),
    RateEntry(D("99"), "USD", None, member_id="m1", project_id="p3"),
    RateEntry(D("101.1"), "USD", START + timedelta(days=4), contract_id="k1"),
    RateEntry(D("17"), "EUR", None, project_id="p4"),  # p4 rows of USD customers mismatch
)
CURRENCIES = ("USD", "JPY", "KWD", "EUR", "CLF")


def resolve(row: TimeRow) -> Customer | None:
    customer = MAPPINGS.projects.get(row.project_id)
    if customer is None and row.client is not None:
        customer = MAPPINGS.clients.get(row.client.id)
    return customer


rows_st = st.builds(
    TimeRow,
    date=st.integers(0, 6).map(lambda d: START + timedelta(days=d)),
    project_id=st.sampled_from(["p0", "p1", "p2", "p3", "p4", "p5"]),
    project_name=st.sampled_from(["Website", "Mobile"]),
    minutes=st.integers(0, 600),
    contract_id=st.sampled_from([None, "k1", "k2"]),
    billable=st.sampled_from([None, True, False]),
    rate=st.one_of(
        st.none(),
        st.builds(Money, st.sampled_from([D("0"), D("19.99"), D("150"), D("7.125")]),
                  st.sampled_from(["USD", "EUR"])),
    ),
    client=st.sampled_from([None, Client("cl0", "Zero"), Client("cl1", "One"),
                            Client("cl2", "Two")]),
    task=st.sampled_from([None, Task("t0", "Design"), Task("t1", "Build")]),
)  # fmt: skip


@st.composite
def cases(draw: st.DrawFn) -> tuple[TimesheetInput, BillingSettings, RateTable]:
    rows = tuple(draw(st.lists(rows_st, max_size=40)))
    sheet = TimesheetInput(
        "ts", Member("m1", "Ada Lovelace"), START, START + timedelta(days=6), rows
    )
    billing = BillingSettings(
        "ws",
        draw(st.sampled_from(["project", "project_day", "task", "detailed"])),
        draw(st.sampled_from([None, 1, 6, 15])),
    )
    table = RateTable(tuple(draw(st.lists(st.sampled_from(RATE_POOL), unique=True))))
    return sheet, billing, table


def customer_minutes(rows: tuple[TimeRow, ...]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        customer = resolve(row)
        if row.billable is not False and customer is not None:
            totals[customer.id] = totals.get(customer.id, 0) + row.minutes
    return totals


def held_customers(result: BillingResult) -> set[str]:
    return {h.customer.id for h in result.holds if h.customer is not None}


@given(cases())
def test_minutes_are_conserved_per_customer(case) -> None:
    sheet, billing, table = case
    result = bill(sheet, billing, MAPPINGS, table)
    drafted = {d.customer.id: d.tracked_minutes for d in result.drafts}
    held = held_customers(result)
    for customer_id, minutes in customer_minutes(sheet.rows).items():
        if minutes:
            assert (customer_id in drafted) != (customer_id in held)
            if customer_id in drafted:
                assert drafted[customer_id] == minutes
        else:
            assert customer_id not in drafted and customer_id not in held
    total = sum(r.minutes for r in sheet.rows)
    assert sum(drafted.values()) + result.held_minutes + result.excluded_minutes == total
    assert result.excluded_minutes == sum(r.minutes for r in sheet.rows if r.billable is False)
    assert result.excluded_rows == sum(1 for r in sheet.rows if r.billable is False)
    unmapped = sum(r.minutes for r in sheet.rows if r.billable is not False and not resolve(r))
    assert sum(h.minutes for h in result.holds if h.reason == "needs_mapping") == unmapped


@given(cases())
def test_no_customer_on_two_drafts_and_lines_add_up(case) -> None:
    sheet, billing, table = case
    result = bill(sheet, billing, MAPPINGS, table)
    ids = [d.customer.id for d in result.drafts]
    assert len(ids) == len(set(ids))
    assert not set(ids) & held_customers(result)
    assert len({d.key for d in result.drafts}) == len(ids)
    for draft in result.drafts:
        assert draft.lines
        assert draft.total == sum(line.amount for line in draft.lines)
        assert draft.minutes == sum(line.minutes for line in draft.lines)
        assert draft.tracked_minutes == sum(line.tracked_minutes for line in draft.lines)
        assert draft.minutes >= draft.tracked_minutes
        for line in draft.lines:
            assert line.amount == line_amount(line.minutes, line.unit_price, draft.currency)
            assert quantize_money(line.quantity * line.unit_price, draft.currency) == line.amount
            assert line.amount == quantize_money(line.amount, draft.currency)
        keys = [
            (x.project_id, x.task_id, x.date_from, x.unit_price, x.rate_source) for x in draft.lines
        ]
        if draft.customer.grouping in (None, "project") and billing.grouping == "project":
            assert len(keys) == len(set(keys))


@given(cases(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(case, rnd) -> None:
    sheet, billing, table = case
    rows = list(sheet.rows)
    rnd.shuffle(rows)
    shuffled = replace(sheet, rows=tuple(rows))
    assert bill(shuffled, billing, MAPPINGS, table) == bill(sheet, billing, MAPPINGS, table)


@given(cases())
def test_other_customers_rows_never_change_a_draft(case) -> None:
    sheet, billing, table = case
    full = bill(sheet, billing, MAPPINGS, table)
    for customer_id in customer_minutes(sheet.rows):
        own_rows = tuple(r for r in sheet.rows if (c := resolve(r)) and c.id == customer_id)
        alone = bill(replace(sheet, rows=own_rows), billing, MAPPINGS, table)

        # Keys hash the whole timesheet's revision, so they are compared separately below.
        def mine(result: BillingResult, cid: str = customer_id) -> tuple:
            drafts = [replace(d, key="") for d in result.drafts if d.customer.id == cid]
            holds = [
                replace(h, key="") for h in result.holds if h.customer and h.customer.id == cid
            ]
            return drafts, holds

        assert mine(full) == mine(alone)


def _rates(draw: st.DrawFn, currency: str) -> Decimal:
    cap = 10 ** (QUANTITY_DECIMALS - minor_units(currency))
    places = draw(st.integers(0, QUANTITY_DECIMALS))
    return draw(st.decimals(min_value=0, max_value=cap, places=places, allow_nan=False))


@settings(max_examples=1000)
@given(st.data(), st.integers(0, 100_000), st.sampled_from(CURRENCIES))
def test_quantity_times_unit_price_rounds_to_amount(data, minutes: int, currency: str) -> None:
    rate = _rates(data.draw, currency)
    check_rate(rate, currency)
    amount = line_amount(minutes, rate, currency)
    quantity = line_quantity(minutes, rate, amount, currency)
    assert -quantity.as_tuple().exponent <= QUANTITY_DECIMALS
    product = quantity * rate
    assert quantize_money(product, currency) == amount

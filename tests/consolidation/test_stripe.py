"""Issue #13 part 1 at the Stripe wire: per_period consolidation through the whole pipeline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import responses
from flask import current_app

from connector import db, pipeline
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import CustomerMapping, Workspace
from connector.providers.base import RetryLater
from tests.consolidation.fake_stripe import FakeStripe
from tests.consolidation.helpers import (
    approval,
    draft_rows,
    period_invoices,
    set_consolidation,
    withdrawal,
)
from webhooks.webwork.events import parse_event

CUSTOMER = "cus_acme"


def day(n: int) -> date:
    return date(2026, 11, 23 + n) if n < 8 else date(2026, 12, n - 7)


@pytest.fixture
def stripe(app: Any, workspace: Any) -> Iterator[FakeStripe]:
    store = DbCredentialStore(workspace.id, "stripe", secret_box(app.config))
    store.connect(
        {"method": "api_key", "api_key": "rk_test_51TestKeyForTheConnectorabcd"},
        account_id="acct_1Test",
        environment="test",
        meta={"customer_currencies": {CUSTOMER: "usd"}},
    )
    with db.session_scope() as s:
        s.get(Workspace, workspace.id).provider = "stripe"
        s.add(
            CustomerMapping(
                workspace_id=workspace.id,
                books="stripe:test:acct_1Test",
                kind="client",
                tracker_id="cl-acme",
                customer_id=CUSTOMER,
                customer_name="Acme Corp",
                customer_currency="USD",
            )
        )
    set_consolidation(workspace.id)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeStripe(rsps)


def keys_on(invoice: dict[str, Any]) -> list[str]:
    return [line["metadata"]["draft_key"] for line in invoice["lines"]["data"]]


def test_three_approvals_of_two_members_make_one_stripe_draft(workspace, post_event, stripe):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60, day(1): 120}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}, rate="30.00"))

    (invoice,) = stripe.live()
    assert invoice["status"] == "draft" and invoice["customer"] == CUSTOMER
    assert stripe.amounts(invoice) == [8250, 1375, 4500]
    assert invoice["total"] == 8250 + 1375 + 4500
    rows = draft_rows()
    assert [r.status for r in rows] == ["drafted"] * 3
    assert {r.provider_id for r in rows} == {invoice["id"]}
    assert keys_on(invoice) == [r.key for r in rows]
    # Traceability: member, timesheet and period on every line; the memo lists the timesheets.
    first = invoice["lines"]["data"][0]
    assert "Ada Lovelace" in first["description"] and "(timesheet ts-1)" in first["description"]
    assert first["metadata"]["timesheet_id"] == "ts-1"
    assert first["metadata"]["member"] == "Ada Lovelace"
    assert first["metadata"]["period"] == "2026-11-23 to 2026-11-24"
    assert invoice["description"] == (
        "Hours worked 2026-11-23 to 2026-11-29. Timesheets: ts-1 (Ada Lovelace), "
        "ts-2 (Bob Babbage), ts-3 (Ada Lovelace)."
    )
    creates = [r for r in stripe.requests if r == ("POST", "/v1/invoices")]
    assert len(creates) == 1


def test_a_withdrawn_approval_takes_only_its_lines_off_the_stripe_draft(
    workspace, post_event, stripe
):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}))
    keys = [r.key for r in draft_rows()]

    post_event(workspace, withdrawal("ts-2"))

    (invoice,) = stripe.live()
    assert keys_on(invoice) == [keys[0], keys[2]]
    assert invoice["total"] == 2750 + 4125
    assert "ts-2" not in invoice["description"]
    assert [r.status for r in draft_rows()] == ["drafted", "voided", "drafted"]

    post_event(workspace, withdrawal("ts-1"))
    post_event(workspace, withdrawal("ts-3"))
    assert stripe.live() == []  # the last lines withdrawn: the unsent draft is deleted
    assert [p.status for p in period_invoices()] == ["voided"]


def test_a_draft_finance_finalized_opens_a_new_one_for_the_rest_of_the_period(
    workspace, post_event, stripe
):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (first,) = stripe.live()
    stripe.finalize(first["id"])  # finance sent it from the Dashboard; no webhook seen yet

    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))

    invoices = stripe.live()
    assert [inv["status"] for inv in invoices] == ["open", "draft"]
    assert stripe.amounts(invoices[0]) == [2750]  # never appended to
    assert stripe.amounts(invoices[1]) == [1375]
    row = draft_rows()[1]
    assert row.provider_id == invoices[1]["id"]
    assert "already sent by finance" in (row.hold_message or "")

    post_event(workspace, approval("ts-3", "u-ada", {day(4): 30}))
    assert [len(inv["lines"]["data"]) for inv in stripe.live()] == [1, 2]


def test_a_lost_add_lines_answer_resumes_without_a_duplicate_line(workspace, post_event, stripe):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    stripe.fail_next["add_lines"] = 1
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    row = draft_rows()[1]
    if row.status != "drafted":  # a job retry in the test worker, or by hand here
        pipeline.bill_timesheet_now(workspace.id, row.timesheet_pk, current_app.config)
    (invoice,) = stripe.live()
    assert stripe.amounts(invoice) == [2750, 1375]
    assert draft_rows()[1].status == "drafted"


def test_concurrent_approvals_append_to_one_draft_without_losing_a_line(app, workspace, stripe):
    approvals = [
        approval(f"ts-{n}", "u-ada" if n % 2 else "u-bob", {day(n % 5): 30 + n}) for n in range(6)
    ]
    ts_pks = []
    with db.new_session() as s:
        ws = s.get(Workspace, workspace.id)
        for doc in approvals:
            event = parse_event(json.dumps(doc).encode())
            ts_row = pipeline.timesheet_row(s, ws, "webwork", event.timesheet_id)
            pipeline.apply_approval(s, ws, ts_row, event, current_app.config)
            s.commit()
            ts_pks.append(ts_row.id)

    barrier = threading.Barrier(len(ts_pks))
    errors: list[BaseException] = []

    def bill(ts_pk: int) -> None:
        with app.app_context():
            barrier.wait()
            for _ in range(20):
                try:
                    pipeline.bill_timesheet_now(workspace.id, ts_pk, current_app.config)
                    return
                except RetryLater:
                    continue
                except BaseException as exc:  # reported below
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=bill, args=(pk,)) for pk in ts_pks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (invoice,) = stripe.live()
    # Each line rounded half-up on its own (33 min x 27.50/h = 15.125 -> 15.13).
    assert sorted(stripe.amounts(invoice)) == [1375, 1421, 1467, 1513, 1558, 1604]
    assert [r.status for r in draft_rows()] == ["drafted"] * 6
    assert len(period_invoices()) == 1


def test_a_timesheet_across_a_week_boundary_goes_on_both_weeks_drafts(
    workspace, post_event, stripe
):
    post_event(workspace, approval("ts-1", "u-ada", {day(1): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(8): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(5): 60, day(7): 120}))

    first, second = stripe.live()
    assert stripe.amounts(first) == [2750, 2750]
    assert stripe.amounts(second) == [1375, 5500]
    assert "ts-3" in first["description"] and "ts-3" in second["description"]
    assert len([r for r in stripe.requests if r == ("POST", "/v1/invoices")]) == 2

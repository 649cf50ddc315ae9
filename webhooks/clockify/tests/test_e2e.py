"""End to end against the stateful fake Clockify, through the receiver and the pipeline:
approve -> drafts to the cent; the same delivery twice, or webhook + poll -> billed once;
withdraw -> withdrawn; edit and re-approve -> replaced; a lost webhook -> the poll finds it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import Delivery, DraftStatus, Timesheet, TimesheetStatus
from webhooks.clockify.tests.conftest import (
    ADA,
    GRACE,
    WEBSITE,
    ada_week,
    drafts,
    every_draft,
    poll,
    post,
)
from webhooks.clockify.tests.fake import FakeClockify


def test_approve_withdraw_edit_and_reapprove_through_webhooks(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any
) -> None:
    request_id = ada_week(clockify_app)
    sent = clockify_app.approve(request_id)
    assert post(client, app, sent) == [202]
    # Website 340 min at Clockify's 100.00/h; Pipeline 65 min at our 95.00/h; Internal not billed.
    assert drafts(billed.id, request_id) == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("566.67")),
        "Initech": (DraftStatus.DRAFTED, Decimal("102.92")),
    }
    with db.new_session() as s:
        ts = s.scalars(select(Timesheet).where(Timesheet.timesheet_id == request_id)).one()
        assert ts.summary["excluded_minutes"] == 45
        assert ts.member["name"] == ADA[1]
        delivery = s.scalars(select(Delivery).where(Delivery.timesheet_id == request_id)).one()
        token = sent[0].headers["Clockify-Signature"]
        assert token not in str(delivery.headers)  # the webhook's token is never stored

    # Clockify retries the same delivery; then the reconciling poll lists the same approval.
    assert post(client, app, sent) == [200]
    assert "0 new approval(s)" in poll(billed.id)
    assert len(every_draft(billed.id)) == 2

    # A manager takes the approval back: the drafts are withdrawn.
    assert post(client, app, clockify_app.withdraw(request_id)) == [202]
    with db.new_session() as s:
        ts = s.scalars(select(Timesheet).where(Timesheet.timesheet_id == request_id)).one()
        assert ts.status == TimesheetStatus.WITHDRAWN
        assert {d.status for d in ts.drafts} == {DraftStatus.VOIDED}

    # Ada edits Monday's Website entry (240 -> 300 min), resubmits, the manager approves again.
    monday = next(e for e in clockify_app.entries if e["projectId"] == WEBSITE)
    clockify_app.edit_entry(monday, 300)
    assert post(client, app, clockify_app.resubmit(request_id)) == [200]  # PENDING: ignored
    assert post(client, app, clockify_app.approve(request_id)) == [202]
    assert drafts(billed.id, request_id) == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("666.67")),  # 400 min at 100/h
        "Initech": (DraftStatus.DRAFTED, Decimal("102.92")),
    }
    assert "0 new approval(s)" in poll(billed.id)


def test_a_lost_webhook_is_found_by_the_poll_and_its_late_webhook_bills_nothing(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any
) -> None:
    clockify_app.track(GRACE[0], "2026-11-02T09:00", 90, WEBSITE, rate_cents=12550)
    request_id = clockify_app.submit(GRACE[0], "2026-11-02")
    clockify_app.lose_webhooks = True
    lost = clockify_app.approve(request_id)
    assert clockify_app.outbox == []

    said = poll(billed.id)
    assert "1 new approval(s)" in said
    # 90 min at Clockify's 125.50/h, in Grace's New York week.
    assert drafts(billed.id, request_id) == {
        "Globex Corporation": (DraftStatus.DRAFTED, Decimal("188.25")),
    }
    with db.new_session() as s:
        delivery = s.scalars(select(Delivery).where(Delivery.timesheet_id == request_id)).one()
        assert delivery.headers == {"x-delivered-by": "clockify-poll"}

    # The webhook arrives after all: read from Clockify, same revision, nothing new.
    assert post(client, app, lost) == [202]
    assert len(every_draft(billed.id)) == 1

    # Withdrawn and the webhook lost again: the poll withdraws the drafts.
    clockify_app.withdraw(request_id)
    assert "1 withdrawal(s)" in poll(billed.id)
    assert {status for _, status, _ in every_draft(billed.id)} == {DraftStatus.VOIDED}

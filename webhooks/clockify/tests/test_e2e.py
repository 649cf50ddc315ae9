"""End to end against the stateful fake Clockify, through the receiver and the pipeline:
approve -> drafts to the cent; the same delivery twice, or webhook + poll -> billed once;
withdraw -> withdrawn; edit and re-approve -> replaced; a lost webhook -> the poll finds it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from connector import db
from connector.models import Delivery, Draft, DraftStatus, Rate, Timesheet, TimesheetStatus
from tests.helpers import map_clients_locally
from webhooks import polling
from webhooks.clockify.tests.conftest import (
    ADA,
    GLOBEX,
    GRACE,
    INITECH,
    PIPELINE,
    WEBSITE,
    ada_week,
)
from webhooks.clockify.tests.fake import Delivery as Sent
from webhooks.clockify.tests.fake import FakeClockify

CLIENTS = {
    GLOBEX: ("Globex Corporation", "ap@globex.example"),
    INITECH: ("Initech", "billing@initech.example"),
}


@pytest.fixture
def billed(app: Any, cf_workspace: Any, connected: str) -> Any:
    """Clients mapped to local customers; Pipeline (no rate in Clockify) at 95.00/h here."""
    map_clients_locally(cf_workspace.id, CLIENTS)
    with db.session_scope() as s:
        s.add(
            Rate(
                workspace_id=cf_workspace.id,
                project_id=PIPELINE,
                amount=Decimal("95.00"),
                currency="USD",
                effective_from=date(2026, 1, 1),
            )
        )
    return cf_workspace


def post(client: Any, app: Any, sent: list[Sent]) -> list[int]:
    base = app.config["PUBLIC_BASE_URL"]
    return [
        client.post(d.url.removeprefix(base), data=d.body, headers=d.headers).status_code
        for d in sent
    ]


def drafts(workspace_id: int, request_id: str) -> dict[str, tuple[str, Decimal | None]]:
    """The live revision's drafts: customer -> (status, total)."""
    with db.new_session() as s:
        ts = s.scalars(
            select(Timesheet).where(
                Timesheet.workspace_id == workspace_id, Timesheet.timesheet_id == request_id
            )
        ).one()
        return {
            d.customer_name or d.subject_key: (d.status, d.total)
            for d in s.scalars(
                select(Draft).where(Draft.timesheet_pk == ts.id, Draft.revision == ts.revision)
            )
        }


def every_draft(workspace_id: int) -> list[tuple[str | None, str, Decimal | None]]:
    with db.new_session() as s:
        return [
            (d.customer_name, d.status, d.total)
            for d in s.scalars(
                select(Draft).where(Draft.workspace_id == workspace_id).order_by(Draft.id)
            )
        ]


def poll(workspace_id: int) -> str:
    from flask import current_app

    return polling.poll_now("clockify", workspace_id, current_app.config, False)


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

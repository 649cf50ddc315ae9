"""Bad input and faults, each at the wire: a wrong or missing token, an unconnected workspace,
another workspace's event, a deleted project, entries without a project, 429 / 5xx / timeouts,
a revoked key (held as "Reconnect Clockify", nothing lost), duplicate deliveries."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from connector import db, worker
from connector.models import (
    Connection,
    ConnectionStatus,
    Delivery,
    Draft,
    DraftStatus,
    Job,
    JobState,
    utcnow,
)
from webhooks.clockify.tests.conftest import ADA, PIPELINE, ada_week, connect, drafts, post
from webhooks.clockify.tests.fake import TIMEOUT, FakeClockify, status


def _stored() -> tuple[int, int]:
    with db.new_session() as s:
        return s.scalar(select(func.count(Delivery.id))), s.scalar(
            select(func.count(Job.id)).where(Job.kind == "process_delivery")
        )


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json", "Clockify-Signature": "not-the-token"},
        {"Content-Type": "application/json", "Clockify-Signature-Token": ""},
    ],
)
def test_wrong_or_missing_token_is_401_and_nothing_is_stored(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any, headers: dict[str, str]
) -> None:
    [sent] = clockify_app.approve(ada_week(clockify_app))
    sent.headers = headers
    response = post(client, app, [sent])
    assert response == [401]
    assert _stored() == (0, 0)


def test_an_event_for_a_clockify_workspace_not_connected_is_refused(
    app: Any, client: Any, clockify_app: FakeClockify, cf_workspace: Any
) -> None:
    # Nothing connected: no webhook token is known, so no delivery is authentic.
    body = json.dumps({"id": "r1", "workspaceId": cf_workspace.tracker_workspace_id}).encode()
    path = f"/webhooks/clockify/{cf_workspace.endpoint_token}"
    assert client.post(path, data=body, headers={"Clockify-Signature": "guess"}).status_code == 401
    assert _stored() == (0, 0)


def test_after_disconnect_the_old_webhook_token_is_refused(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any
) -> None:
    from connector import trackers

    [sent] = clockify_app.approve(ada_week(clockify_app))
    with app.app_context():
        trackers.disconnect_account("clockify", billed.id)
    assert post(client, app, [sent]) == [401]
    assert _stored() == (0, 0)


def test_another_workspaces_event_is_422_naming_it(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any
) -> None:
    [sent] = clockify_app.approve(ada_week(clockify_app))
    document = json.loads(sent.body)
    document["workspaceId"] = "someone-elses"
    sent.body = json.dumps(document).encode()
    assert post(client, app, [sent]) == [422]
    assert drafts_count(billed.id) == 0


def drafts_count(workspace_id: int) -> int:
    with db.new_session() as s:
        return s.scalar(select(func.count(Draft.id)).where(Draft.workspace_id == workspace_id))


def test_deleted_project_and_entries_without_a_project_are_held_by_name_not_lost(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any
) -> None:
    clockify_app.track(ADA[0], "2026-11-05T09:00", 30, None)  # no project
    request_id = ada_week(clockify_app)
    clockify_app.delete_project(PIPELINE)  # its entries keep their project id, nothing else
    assert post(client, app, clockify_app.approve(request_id)) == [202]
    found = drafts(billed.id, request_id)
    assert found["Globex Corporation"] == (DraftStatus.DRAFTED, Decimal("566.67"))
    held = {k: v[0] for k, v in found.items() if k != "Globex Corporation"}
    assert held == {
        "project:no-project": DraftStatus.NEEDS_MAPPING,
        f"project:{PIPELINE}": DraftStatus.NEEDS_MAPPING,
    }


def _process_jobs(workspace_id: int) -> list[tuple[str, str | None]]:
    with db.new_session() as s:
        return [
            (j.state, j.wait_reason)
            for j in s.scalars(
                select(Job).where(Job.workspace_id == workspace_id, Job.kind == "process_delivery")
            )
        ]


@pytest.mark.parametrize(
    "faults",
    [
        [status(503)] * 5,
        [TIMEOUT] * 5,
        [status(429, {"Retry-After": "600"})],
    ],
    ids=["5xx", "timeouts", "429-long-retry-after"],
)
def test_clockify_faults_while_reading_an_approval_retry_later_and_lose_nothing(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any, faults: list[Any]
) -> None:
    request_id = ada_week(clockify_app)
    sent = clockify_app.approve(request_id)
    clockify_app.fail_next(*faults)
    assert post(client, app, sent) == [202]
    assert drafts_count(billed.id) == 0
    [(state, _)] = _process_jobs(billed.id)
    assert state == JobState.PENDING  # retried later (after Retry-After), not failed
    with db.session_scope() as s:
        job = s.scalars(select(Job).where(Job.kind == "process_delivery")).one()
        job.next_attempt_at = utcnow()  # the retry's time has come
        job_id = job.id
    with app.app_context():
        worker.run_job(job_id)
    assert drafts(billed.id, request_id)["Globex Corporation"][1] == Decimal("566.67")


def test_a_short_429_is_waited_out_inside_the_read(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any, sleeps: list[float]
) -> None:
    request_id = ada_week(clockify_app)
    sent = clockify_app.approve(request_id)
    clockify_app.fail_next(status(429, {"Retry-After": "3"}))
    assert post(client, app, sent) == [202]
    assert 3.0 in sleeps
    assert drafts(billed.id, request_id)["Initech"][1] == Decimal("102.92")


def test_a_revoked_key_holds_reconnect_clockify_and_the_reconnect_bills_the_waiting_approval(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any, connected: str
) -> None:
    request_id = ada_week(clockify_app)
    clockify_app.revoke(connected)
    assert post(client, app, clockify_app.approve(request_id)) == [202]
    assert _process_jobs(billed.id) == [(JobState.WAITING, "clockify_reconnect")]
    with db.new_session() as s:
        row = s.scalars(select(Connection).where(Connection.provider == "clockify")).one()
        assert row.status == ConnectionStatus.RECONNECT_NEEDED
        assert row.last_error.startswith("Reconnect Clockify")
    assert drafts_count(billed.id) == 0

    with app.app_context():
        connect(billed.id, clockify_app.add_key())
    assert drafts(billed.id, request_id)["Globex Corporation"] == (
        DraftStatus.DRAFTED,
        Decimal("566.67"),
    )


def test_the_poll_holds_a_revoked_key_too(
    app: Any, clockify_app: FakeClockify, billed: Any, connected: str
) -> None:
    from connector import trackers
    from webhooks.clockify.poller import poll

    clockify_app.revoke(connected)
    with app.app_context(), pytest.raises(trackers.PollProblem) as caught:
        poll(billed.id, app.config, False)
    assert caught.value.refused and caught.value.message.startswith("Reconnect Clockify")


def test_an_unreadable_entry_fails_the_approval_naming_it_and_the_poll_shows_it(
    app: Any, client: Any, clockify_app: FakeClockify, billed: Any
) -> None:
    request_id = ada_week(clockify_app)
    clockify_app.entries[0]["timeInterval"]["duration"] = "an hour"
    assert post(client, app, clockify_app.approve(request_id)) == [202]
    [(state, _)] = _process_jobs(billed.id)
    assert state == JobState.FAILED  # trying again would read the same entry
    with db.new_session() as s:
        job = s.scalars(select(Job).where(Job.kind == "process_delivery")).one()
        assert "entries/0/timeInterval/duration" in (job.last_error or "")
    assert drafts_count(billed.id) == 0

    from webhooks.clockify.tests.conftest import poll

    with app.app_context():
        assert "1 unreadable" in poll(billed.id)
        poll(billed.id)  # the same reason is not stored twice
    with db.new_session() as s:
        invalid = list(s.scalars(select(Delivery).where(Delivery.status == "invalid")))
    assert len(invalid) == 1 and "entries/0/timeInterval/duration" in (invalid[0].error or "")

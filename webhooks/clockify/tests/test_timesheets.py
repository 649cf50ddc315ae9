"""Clockify's approval request and entries -> the stored timesheet -> billing's input."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from webhooks.clockify.events import EventError, parse_event
from webhooks.clockify.normalize import normalize_timesheet
from webhooks.clockify.tests.conftest import ADA, INTERNAL, PIPELINE, WEBSITE, ada_week, populate
from webhooks.clockify.tests.fake import FakeClockify
from webhooks.clockify.timesheets import NO_PROJECT, EntryError, build_timesheet

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def approved_week() -> tuple[dict[str, Any], list[dict[str, Any]], FakeClockify]:
    fake = FakeClockify()
    populate(fake)
    request_id = ada_week(fake)
    fake.approve(request_id)
    request = fake.approvals[request_id]
    item = fake._approval_requests({"status": ["APPROVED"]})[2][0]
    return request, item["entries"], fake


def test_rows_are_the_owners_local_days_with_clockifys_rate_in_cents() -> None:
    request, entries, _ = approved_week()
    timesheet = build_timesheet(request, entries)
    assert (timesheet["date_from"], timesheet["date_to"]) == ("2026-11-02", "2026-11-08")
    assert timesheet["member"] == {"id": ADA[0], "name": ADA[1], "email": ADA[2]}
    rows = {(r["date"], r["project_id"]): r for r in timesheet["rows"]}
    # 00:30 Berlin on 3 November is 23:30Z on the 2nd: the owner's day counts.
    assert rows[("2026-11-03", WEBSITE)]["minutes"] == 100
    assert rows[("2026-11-02", WEBSITE)]["rate"] == {"amount": "100.00", "currency": "USD"}
    assert rows[("2026-11-02", WEBSITE)]["client"] == {
        "id": "cl-globex",
        "name": "Globex Corporation",
    }
    assert rows[("2026-11-02", PIPELINE)]["rate"] is None  # no Clockify rate: our table's
    assert rows[("2026-11-04", INTERNAL)]["billable"] is False


def test_normalized_input_matches_the_rows() -> None:
    request, entries, _ = approved_week()
    ts = normalize_timesheet(build_timesheet(request, entries))
    assert ts.id == request["id"] and ts.member.name == ADA[1]
    assert (ts.date_from, ts.date_to) == (date(2026, 11, 2), date(2026, 11, 8))
    website = [r for r in ts.rows if r.project_id == WEBSITE]
    assert sum(r.minutes for r in website) == 340
    assert {r.rate.amount for r in website if r.rate} == {Decimal("100.00")}
    assert ts.approved_at is not None


def test_seconds_are_summed_then_rounded_once_and_breaks_left_out() -> None:
    request, _, fake = approved_week()
    for _ in range(3):
        fake.track(ADA[0], "2026-11-05T09:00", 0, WEBSITE, seconds=20)
    running = fake.track(ADA[0], "2026-11-05T12:00", 30, WEBSITE)
    running["timeInterval"].update(end=None, duration=None)
    pause = fake.track(ADA[0], "2026-11-05T13:00", 30, WEBSITE)
    pause["type"] = "BREAK"
    entries = [fake._hydrated(e) for e in fake.entries]
    rows = [r for r in build_timesheet(request, entries)["rows"] if r["date"] == "2026-11-05"]
    assert [r["minutes"] for r in rows] == [1]


def test_entries_without_a_project_and_of_a_deleted_project_are_kept_and_named() -> None:
    request, _, fake = approved_week()
    fake.track(ADA[0], "2026-11-06T09:00", 30, None)
    fake.track(ADA[0], "2026-11-06T10:00", 15, PIPELINE)
    fake.delete_project(PIPELINE)
    entries = [fake._hydrated(e) for e in fake.entries]
    rows = {
        r["project_id"]: r
        for r in build_timesheet(request, entries)["rows"]
        if r["date"] == "2026-11-06"
    }
    assert rows[NO_PROJECT]["project_name"] == "No project" and rows[NO_PROJECT]["minutes"] == 30
    assert rows[PIPELINE]["project_name"] == f"Deleted project {PIPELINE}"
    assert rows[PIPELINE]["client"] is None


def test_a_bad_duration_names_the_entry() -> None:
    request, entries, _ = approved_week()
    entries[0]["timeInterval"]["duration"] = "an hour"
    with pytest.raises(EntryError, match=r"entries/0/timeInterval/duration"):
        build_timesheet(request, entries)


def test_approved_webhook_is_a_thin_approval_of_the_owners_period() -> None:
    event = parse_event(fixture("approval_request_status_updated__approved"))
    assert event.is_approval and event.supported and event.is_thin
    assert event.type == "approval_request.approved" and event.state == "APPROVED"
    assert (
        event.timesheet["date_from"] == "2026-11-02" and event.timesheet["date_to"] == "2026-11-08"
    )
    assert event.workspace_id == "64f0aa11bb22cc33dd44ee55"


def test_withdrawn_approval_is_a_withdrawal_and_pending_is_ignored() -> None:
    withdrawn = parse_event(fixture("approval_request_status_updated__withdrawn_approval"))
    assert withdrawn.is_withdrawal and withdrawn.supported and not withdrawn.is_approval
    pending = parse_event(fixture("approval_request_status_updated__pending"))
    assert not pending.supported


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"not json", 400, ""),
        (b"[]", 400, ""),
        (json.dumps({"id": "x", "workspaceId": "w"}).encode(), 422, "/status"),
        (
            json.dumps(
                {
                    "id": "x",
                    "workspaceId": "w",
                    "status": {"state": "APPROVED", "updatedAt": "2026-11-09T09:30:00Z"},
                }
            ).encode(),
            422,
            "/dateRange",
        ),
        (
            json.dumps(
                {
                    "id": "x",
                    "workspaceId": "w",
                    "owner": {"userId": "u\u0000"},
                    "dateRange": {"start": "2026-11-01T23:00:00Z", "end": "2026-11-08T22:59:59Z"},
                    "status": {"state": "APPROVED", "updatedAt": "2026-11-09T09:30:00Z"},
                }
            ).encode(),
            422,
            "/owner/userId",
        ),
    ],
)
def test_malformed_bodies_name_the_field(body: bytes, status: int, field: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(body)
    assert caught.value.status == status
    assert caught.value.field.startswith(field)


def test_tasks_are_kept_and_split_rows() -> None:
    request, _, fake = approved_week()
    fake.track(ADA[0], "2026-11-06T09:00", 30, WEBSITE, task=("tk-1", "Design"), rate_cents=10000)
    fake.track(ADA[0], "2026-11-06T10:00", 15, WEBSITE, task=("tk-1", "Design"), rate_cents=10000)
    fake.track(ADA[0], "2026-11-06T11:00", 20, WEBSITE, rate_cents=10000)
    entries = [fake._hydrated(e) for e in fake.entries]
    ts = normalize_timesheet(build_timesheet(request, entries))
    friday = [
        (r.task.name if r.task else None, r.minutes) for r in ts.rows if r.date == date(2026, 11, 6)
    ]
    assert sorted(friday, key=str) == [("Design", 45), (None, 20)]

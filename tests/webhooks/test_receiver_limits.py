"""Issue #9: nothing the receiver accepts may fail later for its shape.

Every body answered 202 must end billed, held with a reason, or waiting for data; everything
billing or the database cannot take is refused at the door with a 4xx naming the field, and the
authentic delivery is kept.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from connector import db
from connector.models import (
    HOLD_STATUSES,
    Delivery,
    Draft,
    DraftStatus,
    Job,
    JobState,
    LocalInvoice,
    Timesheet,
)
from tests.helpers import event, map_clients_locally

APPROVED = "timesheet_approved__three_customers"
FIRST_ROW = ("data", "timesheet", "daily_breakdown", "2026-11-16", 0)
ROW = "/data/timesheet/daily_breakdown/2026-11-16/0"


def assert_accepted_ends_well() -> None:
    """Every job ended done or waiting for a named thing; no delivery or draft failed; the
    drafts of every live approval are billed or held with a reason."""
    db.session.expire_all()
    for job in db.session.scalars(select(Job)):
        assert job.state in (JobState.DONE, JobState.WAITING), (job.state, job.last_error)
        if job.state == JobState.WAITING:
            assert job.wait_reason, job.last_error
    for delivery in db.session.scalars(select(Delivery)):
        assert delivery.status != "failed", delivery.error
    for draft in db.session.scalars(select(Draft)):
        assert draft.status != DraftStatus.FAILED, draft.error
        if draft.revision == draft.timesheet.revision:
            held = draft.status in HOLD_STATUSES and draft.hold_message
            assert draft.status == DraftStatus.DRAFTED or held, (draft.status, draft.error)


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


def _raw_with(doc: dict[str, Any], marker: str, raw_json: str) -> bytes:
    """The document with the string value ``marker`` replaced by raw JSON text."""
    text = json.dumps(doc)
    assert json.dumps(marker) in text
    return text.replace(json.dumps(marker), raw_json).encode()


# --- item 1: numbers with a fraction are billed, exactly ----------------------------------------
@pytest.mark.parametrize("amount", ["27.5", "27.50", "27.500001"])
def test_rate_as_a_json_number_with_a_fraction_is_billed(workspace, post_event, amount) -> None:
    map_clients_locally(workspace.id)
    doc = _set(event(APPROVED), (*FIRST_ROW, "rate", "amount"), "@AMOUNT@")
    res = post_event(workspace, _raw_with(doc, "@AMOUNT@", amount))
    assert res.status_code == 202, res.json
    assert_accepted_ends_well()
    drafts = list(db.session.scalars(select(Draft)))
    assert len(drafts) == 3 and {d.status for d in drafts} == {DraftStatus.DRAFTED}
    globex = next(d for d in drafts if d.customer_name == "Globex Corporation")
    website = next(line for line in globex.lines if line["project_name"] == "Website")
    assert website["unit_price"] == "27.50" or website["unit_price"].startswith(amount)


def test_extra_fractional_field_is_billed(workspace, post_event) -> None:
    map_clients_locally(workspace.id)
    doc = event(APPROVED)
    doc["data"]["timesheet"]["total_hours"] = "@HOURS@"
    doc["data"]["timesheet"]["daily_breakdown"]["2026-11-16"][0]["ratio"] = "@RATIO@"
    body = _raw_with(doc, "@HOURS@", "21.1").replace(b'"@RATIO@"', b"1e400")
    res = post_event(workspace, body)
    assert res.status_code == 202, res.json
    assert_accepted_ends_well()
    assert {d.status for d in db.session.scalars(select(Draft))} == {DraftStatus.DRAFTED}


# --- item 2: refused at the door, naming the field ----------------------------------------------
AMOUNT = f"{ROW}/rate/amount"


@pytest.mark.parametrize(
    "raw",
    ["1e400", str(10**30), "1e-400", "100000.01", '"999999999999.999999"', "0.00000001"],
)
def test_amounts_billing_cannot_take_are_422(workspace, post_event, raw) -> None:
    map_clients_locally(workspace.id)
    doc = _set(event(APPROVED), (*FIRST_ROW, "rate", "amount"), "@AMOUNT@")
    res = post_event(workspace, _raw_with(doc, "@AMOUNT@", raw))
    assert res.status_code == 422, res.json
    assert res.json["field"] == AMOUNT
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "invalid"
    assert db.session.scalars(select(Job)).first() is None


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ((*FIRST_ROW, "project_id"), f"{ROW}/project_id"),
        (("data", "timesheet", "member", "id"), "/data/timesheet/member/id"),
        ((*FIRST_ROW, "client", "id"), f"{ROW}/client/id"),
        (("data", "workspace_id"), "/data/workspace_id"),
    ],
)
def test_integer_ids_longer_than_the_column_are_422(workspace, post_event, path, field) -> None:
    doc = _set(event(APPROVED), path, 10**300)
    res = post_event(workspace, doc)
    assert res.status_code == 422, res.json
    assert res.json["field"] == field


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b", "\udfff tail"])
@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("data", "timesheet", "member", "name"), "/data/timesheet/member/name"),
        ((*FIRST_ROW, "project_name"), f"{ROW}/project_name"),
        ((*FIRST_ROW, "client", "name"), f"{ROW}/client/name"),
        (("data", "timesheet", "status"), "/data/timesheet/status"),
        (("data", "timesheet", "note"), "/data/timesheet/note"),  # an extra field is stored too
    ],
)
def test_text_the_database_cannot_store_is_422(workspace, post_event, bad, path, field) -> None:
    map_clients_locally(workspace.id)
    doc = _set(event(APPROVED), path, bad)
    res = post_event(workspace, doc)
    assert res.status_code == 422, res.json
    assert res.json["field"] == field
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "invalid"


def test_a_date_time_outside_the_utc_range_is_422(workspace, post_event) -> None:
    doc = event(APPROVED)
    doc["data"]["timesheet"]["approved_at"] = "0001-01-01T00:00:00+05:00"
    res = post_event(workspace, doc)
    assert res.status_code == 422 and res.json["field"] == "/data/timesheet/approved_at"
    res = post_event(workspace, event(APPROVED, timestamp="9999-12-31T23:59:59-05:00"))
    assert res.status_code == 422 and res.json["field"] == "/timestamp"


# --- item 3: authentic bodies never answer 500; the delivery is kept ----------------------------
@pytest.mark.parametrize("bad", ["ts\ud800", "ts\x00x", "x" * 256])
def test_unstorable_timesheet_id_is_422_and_kept(workspace, post_event, bad) -> None:
    doc = event(APPROVED)
    doc["data"]["timesheet"]["id"] = bad
    res = post_event(workspace, doc)
    assert res.status_code == 422, res.get_data(as_text=True)
    assert res.json["field"] == "/data/timesheet/id"
    delivery = db.session.get(Delivery, res.json["delivery_id"])
    assert delivery.status == "invalid" and delivery.timesheet_id is None


def test_event_type_longer_than_its_column_is_422_and_kept(workspace, post_event) -> None:
    res = post_event(workspace, event(APPROVED, type="timesheet." + "a" * 200))
    assert res.status_code == 422, res.get_data(as_text=True)
    assert res.json["field"] == "/type"
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "invalid"


def test_unstorable_key_in_an_error_is_kept(workspace, post_event) -> None:
    doc = event(APPROVED)
    doc["data"]["timesheet"]["daily_breakdown"]["\x00\ud800"] = []
    res = post_event(workspace, doc)
    assert res.status_code == 422, res.get_data(as_text=True)
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "invalid"


# --- item 4: unknown event types are acknowledged whatever their data holds ----------------------
@pytest.mark.parametrize(
    "data",
    [
        {"member": {"id": 7, "name": "Ada"}},
        {"timesheet": "not an object"},
        {"project": {"id": "p\x00", "name": "\ud800"}, "amount": 1e300},
    ],
)
def test_unknown_type_is_200_ignored_whatever_its_data(workspace, post_event, data) -> None:
    doc = {
        "type": "member.updated",
        "timestamp": "2026-11-23T09:15:02Z",
        "data": {"workspace_id": "4242", **data},
    }
    res = post_event(workspace, doc)
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.json["status"] == "ignored" and res.json["event_type"] == "member.updated"
    delivery = db.session.get(Delivery, res.json["delivery_id"])
    assert delivery.status == "ignored" and delivery.timesheet_id is None
    assert db.session.scalars(select(Job)).first() is None


def test_unknown_type_still_needs_a_valid_envelope(workspace, post_event) -> None:
    res = post_event(workspace, {"type": "member.updated", "timestamp": "2026-11-23T09:15:02Z"})
    assert res.status_code == 422 and res.json["field"] == "/data"
    res = post_event(
        workspace,
        {"type": "member.updated", "timestamp": "2026-11-23T09:15:02Z", "data": {"x": 1}},
    )
    assert res.status_code == 422 and res.json["field"] == "/data/workspace_id"
    other = {"type": "member.updated", "timestamp": "2026-11-23T09:15:02Z"}
    res = post_event(workspace, {**other, "data": {"workspace_id": "9999"}})
    assert res.status_code == 422 and res.json["field"] == "/data/workspace_id"


def test_supported_type_still_needs_its_timesheet(workspace, post_event) -> None:
    doc = event(APPROVED)
    del doc["data"]["timesheet"]
    res = post_event(workspace, doc)
    assert res.status_code == 422 and res.json["field"] == "/data/timesheet"


def test_replaying_an_ignored_delivery_does_not_fail(workspace, post_event) -> None:
    from webhooks.inbox import replay_delivery

    doc = {
        "type": "member.updated",
        "timestamp": "2026-11-23T09:15:02Z",
        "data": {"workspace_id": "4242", "member": {"id": 7}},
    }
    res = post_event(workspace, doc)
    assert res.status_code == 200
    assert replay_delivery(workspace.id, res.json["delivery_id"]) is not None
    assert_accepted_ends_well()
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "ignored"


def test_preview_of_an_unsupported_type_names_the_type(workspace, client) -> None:
    doc = event(APPROVED, type="member.updated")
    res = client.post("/api/v1/preview", json=doc, headers=workspace.auth)
    assert res.status_code == 422 and res.json["field"] == "/type"


@pytest.mark.parametrize("msg_id", ["msg\x00id", "msg\x7f", "msg\tid"])
def test_a_webhook_id_the_database_cannot_store_is_refused(workspace, post_event, msg_id) -> None:
    res = post_event(workspace, event(APPROVED), msg_id=msg_id)
    assert res.status_code == 401, res.get_data(as_text=True)
    assert db.session.scalars(select(Delivery)).first() is None


def test_kept_headers_the_database_cannot_store_do_not_lose_the_delivery(
    workspace, post_event
) -> None:
    res = post_event(workspace, event(APPROVED), headers={"user-agent": "relay\x00\x01/1.0"})
    assert res.status_code == 202, res.get_data(as_text=True)
    assert db.session.get(Delivery, res.json["delivery_id"]).headers["user-agent"]


def test_raw_surrogate_bytes_are_422_not_stored(workspace, post_event) -> None:
    # json.loads decodes bytes with "surrogatepass": an encoded surrogate becomes a lone one.
    doc = _set(event(APPROVED), ("data", "timesheet", "member", "name"), "@NAME@")
    body = json.dumps(doc).encode().replace(b"@NAME@", b"Ada \xed\xa0\x80")
    res = post_event(workspace, body)
    assert res.status_code == 422, res.get_data(as_text=True)
    assert res.json["field"] == "/data/timesheet/member/name"


def test_a_utf16_body_with_a_fractional_rate_is_billed(workspace, post_event) -> None:
    map_clients_locally(workspace.id)
    doc = _set(event(APPROVED), (*FIRST_ROW, "rate", "amount"), "@AMOUNT@")
    body = _raw_with(doc, "@AMOUNT@", "27.5").decode().encode("utf-16-le")
    res = post_event(workspace, body)
    assert res.status_code == 202, res.get_data(as_text=True)
    assert_accepted_ends_well()
    assert {d.status for d in db.session.scalars(select(Draft))} == {DraftStatus.DRAFTED}


def test_extra_fields_nested_too_deep_are_422(workspace, post_event) -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"x": deep}
    doc = _set(event(APPROVED), ("data", "timesheet", "extra"), deep)
    res = post_event(workspace, doc)
    assert res.status_code == 422, res.get_data(as_text=True)
    assert res.json["field"].startswith("/data/timesheet/extra/x/x")
    shallow = _set(event(APPROVED), ("data", "timesheet", "extra"), {"x": {"y": [1, [2]]}})
    assert post_event(workspace, shallow).status_code == 202


# --- found by the fuzz: content flipping back to an earlier approval ---------------------------
def test_reapproving_earlier_content_after_a_replacement_is_billed(workspace, post_event) -> None:
    map_clients_locally(workspace.id)
    first = event(APPROVED)
    changed = _set(event(APPROVED), (*FIRST_ROW, "total_minutes"), 100)
    for doc in (first, changed, first):
        assert post_event(workspace, doc).status_code == 202
    assert_accepted_ends_well()
    timesheet = db.session.scalars(select(Timesheet)).one()
    live = [d for d in db.session.scalars(select(Draft)) if d.revision == timesheet.revision]
    assert len(live) == 3 and {d.status for d in live} == {DraftStatus.DRAFTED}
    assert (
        len(db.session.scalars(select(LocalInvoice).where(LocalInvoice.state == "draft")).all())
        == 3
    )

"""Clockify's ``APPROVAL_REQUEST_STATUS_UPDATED`` webhook body -> an event the core reads.

Clockify POSTs the approval request itself (no envelope, no event name: the webhook is
registered for this one event)::

    {"id": ..., "workspaceId": ..., "dateRange": {"start", "end"},
     "owner": {"userId", "userName", "timezone", "startOfWeek"},
     "status": {"state", "updatedBy", "updatedByUserName", "updatedAt", "note"}}

``status.state`` says what happened: ``APPROVED`` is an approval; ``WITHDRAWN_APPROVAL`` (a
manager took the approval back) and ``REJECTED`` are withdrawals; anything else (``PENDING``,
``WITHDRAWN_SUBMISSION``) is acknowledged and ignored. The event carries no time entries: it is
"thin", and its rows are read from Clockify before billing (``fill.py``). A body the reconciling
poll stores has the same shape plus the ``rows`` it read (``timesheet``), so both arrive here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import fastjsonschema

from connector import trackers
from connector.validation import JsonError, parse_json
from webhooks.clockify import SOURCE
from webhooks.clockify.timesheets import EntryError, member_of, request_period
from webhooks.inbox import UNSTORABLE, storable_text

SCHEMA_PATH = Path(__file__).with_name("approval_request.schema.json")
APPROVED = "APPROVED"
WITHDRAWN_STATES = frozenset({"WITHDRAWN_APPROVAL", "REJECTED"})
# Our names for what a status change means (the seam maps them to the core's event kinds).
APPROVAL_TYPE = "approval_request.approved"
WITHDRAWAL_TYPE = "approval_request.withdrawn"


class EventError(trackers.EventError):
    """Authentic but malformed: 400 (not JSON) or 422 (JSON that is no approval request)."""


@dataclass(frozen=True)
class Event:
    """A validated approval status change. ``timesheet`` is what the pipeline stores: the
    request's id, member and period, plus ``rows`` once they were read from Clockify."""

    type: str
    state: str
    timestamp: datetime
    workspace_id: str
    timesheet: dict[str, Any]
    source: ClassVar[str] = SOURCE

    @property
    def supported(self) -> bool:
        return self.type in (APPROVAL_TYPE, WITHDRAWAL_TYPE)

    @property
    def timesheet_id(self) -> str:
        return str(self.timesheet["id"])

    @property
    def is_approval(self) -> bool:
        return self.type == APPROVAL_TYPE

    @property
    def is_withdrawal(self) -> bool:
        return self.type == WITHDRAWAL_TYPE

    @property
    def is_thin(self) -> bool:
        """No rows yet: they must be read from Clockify before billing."""
        return "rows" not in self.timesheet

    def with_timesheet(self, timesheet: dict[str, Any]) -> Event:
        return Event(self.type, self.state, self.timestamp, self.workspace_id, timesheet)


@cache
def _validator() -> Any:
    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text()))


def _pointer(path: list[Any]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _describe(error: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    path = list(error.path or [])[1:]
    field = _pointer(path)
    if error.rule == "required" and isinstance(error.value, dict):
        missing = next((m for m in error.rule_definition if m not in error.value), "")
        return f"{field.rstrip('/')}/{missing}", f"'{missing}' is required"
    return field, str(error.message).replace(str(error.name), "value", 1)


def _check_storable(value: Any, path: list[Any]) -> None:
    """Reject (422, naming the field) a string neither database can store."""
    if isinstance(value, str):
        if UNSTORABLE.search(value):
            raise EventError(
                422,
                storable_text(_pointer(path)),
                "contains a NUL character or an unpaired surrogate, which cannot be stored",
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, path)
            _check_storable(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, [*path, index])


def event_type(state: str) -> str:
    if state == APPROVED:
        return APPROVAL_TYPE
    if state in WITHDRAWN_STATES:
        return WITHDRAWAL_TYPE
    return f"approval_request.{state.lower() or 'unknown'}"


def _timestamp(status: dict[str, Any]) -> datetime:
    text = status.get("updatedAt")
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise EventError(422, "/status/updatedAt", f"{text!r} is not a date-time") from None
    if parsed.tzinfo is None:
        raise EventError(422, "/status/updatedAt", "date-time needs a UTC offset")
    return parsed.astimezone(UTC)


def parse_event(body: bytes) -> Event:
    try:
        document = parse_json(body)
    except JsonError as exc:
        raise EventError(400, "", f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise EventError(400, "", "body must be a JSON object")
    try:
        _validator()(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise EventError(422, *_describe(exc)) from None
    _check_storable(document, [])
    status = document["status"]
    state = str(status["state"])
    kind = event_type(state)
    timesheet: dict[str, Any] = {"id": str(document["id"])}
    if kind in (APPROVAL_TYPE, WITHDRAWAL_TYPE):
        try:
            start, end = request_period(document)
            timesheet.update(
                member=member_of(document), date_from=start.isoformat(), date_to=end.isoformat()
            )
        except EntryError as exc:
            field, _, message = str(exc).partition(": ")
            raise EventError(422, "/" + field, message) from None
        polled = document.get("timesheet")
        if kind == APPROVAL_TYPE and isinstance(polled, dict):
            if str(polled.get("id")) != timesheet["id"]:
                raise EventError(422, "/timesheet/id", "is not the approval request's id")
            timesheet = polled  # a polled delivery: the rows its poll read
    return Event(
        type=kind,
        state=state,
        timestamp=_timestamp(status),
        workspace_id=str(document["workspaceId"]),
        timesheet=timesheet,
    )

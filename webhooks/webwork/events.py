"""Parse and validate a v1 event body; errors name the offending field (JSON pointer)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import fastjsonschema

from connector import trackers
from connector.validation import JsonError, parse_json
from webhooks.inbox import UNSTORABLE as _UNSTORABLE
from webhooks.inbox import storable_text
from webhooks.webwork import SOURCE

SCHEMA_PATH = Path(__file__).with_name("event.v1.schema.json")
SUPPORTED_TYPES = frozenset({"timesheet.approved", "timesheet.unapproved"})


class EventError(trackers.EventError):
    """Authentic but malformed: 400 (not JSON) or 422 (JSON that breaks the contract)."""


@dataclass(frozen=True)
class Event:
    """A validated event. ``timesheet`` is JSON-ready: numbers with a fraction are kept as their
    exact decimal text (json.loads read them as Decimal), so it can be stored as it is.
    Unsupported types carry only the envelope: their ``timesheet`` is empty."""

    type: str
    timestamp: datetime
    workspace_id: str
    timesheet: dict[str, Any]
    source: ClassVar[str] = SOURCE

    @property
    def supported(self) -> bool:
        return self.type in SUPPORTED_TYPES

    @property
    def timesheet_id(self) -> str:
        return str(self.timesheet["id"])

    @property
    def is_approval(self) -> bool:
        return self.type == "timesheet.approved"

    @property
    def is_thin(self) -> bool:
        """Only the id: the rows must be fetched from the tracker before billing."""
        return "daily_breakdown" not in self.timesheet


@cache
def _validator() -> Any:
    # fastjsonschema compiles the schema to Python once: validation costs a fraction of a
    # millisecond on the request path, where an interpreted validator cost several.
    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text()))


def pointer(path: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _describe(error: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    path = list(error.path or [])[1:]  # drop the leading "data" (the document itself)
    field = pointer(path)
    message = str(error.message).replace(str(error.name), "value", 1)
    if error.rule == "required" and isinstance(error.value, dict):
        missing = next((m for m in error.rule_definition if m not in error.value), "")
        return f"{field.rstrip('/')}/{missing}", f"'{missing}' is required"
    if error.rule == "dependencies" and isinstance(error.value, dict):
        return field, f"{message} (a timesheet with rows needs member, date_from and date_to)"
    return field, message


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode(body: bytes) -> tuple[Any, bool]:
    """The document, and whether it holds a number with a fraction (read as a Decimal)."""
    fractions: list[str] = []

    def exact(text: str) -> Decimal:
        fractions.append(text)
        return Decimal(text)

    try:
        document = parse_json(body, parse_float=exact, parse_constant=_reject_constant)
    except JsonError as exc:
        raise EventError(400, "", f"body is not valid JSON: {exc}") from None
    return document, bool(fractions)


def parse_datetime(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise EventError(422, field, f"{value!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise EventError(422, field, "date-time needs a UTC offset, e.g. 2026-11-20T10:00:00Z")
    try:
        # Stored in UTC: 0001-01-01T00:00:00+05:00 has no UTC equivalent and could not be.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise EventError(422, field, f"{value!r} is outside the years 1..9999 in UTC") from None


# What neither database can store in a text column or PostgreSQL in JSON: NUL, and UTF-16
# surrogate code points (json.loads turns an unpaired "\ud800" escape into one).


# Deeper than any timesheet: a fixed bound keeps the JSON encoder that stores the timesheet far
# from the interpreter's recursion limit, whatever extra fields a sender nests.
MAX_DEPTH = 32
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _nesting(value: Any) -> int:
    """How deeply objects and arrays nest in ``value`` (no recursion: any depth is safe)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return deepest


def _check_storable(value: Any, path: tuple[Any, ...]) -> Any:
    """Raise EventError(422) naming the first string (or key) the database cannot store, or
    the first object or array nested deeper than MAX_DEPTH inside data.timesheet.

    Returns the value JSON-ready: Decimals become their exact decimal text, because the stdlib
    json encoder (which SQLAlchemy's JSON columns use) cannot write a Decimal.
    """
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise EventError(
                422,
                storable_text(pointer(path)),
                "contains a NUL character or an unpaired surrogate, which cannot be stored",
            )
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list) and len(path) > MAX_DEPTH + 1:  # path starts data/timesheet
        raise EventError(422, storable_text(pointer(path)), f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if _UNSTORABLE.search(key):
                raise EventError(
                    422,
                    storable_text(pointer((*path, key))),
                    "this name contains a NUL character or an unpaired surrogate",
                )
            out[key] = _check_storable(item, (*path, key))
        return out
    if isinstance(value, list):
        return [_check_storable(item, (*path, index)) for index, item in enumerate(value)]
    return value


def _storable_timesheet(body: bytes, timesheet: Any, has_fraction: bool) -> Any:
    """The timesheet JSON-ready, or EventError(422); the common body skips the walk (costly)."""
    try:
        # Strict: an encoded surrogate fails here (json.loads lets it in), and so does most
        # UTF-16 or UTF-32 (also read by json.loads); NUL bytes are a UTF-16/32 body's mark.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    # In plain UTF-8, NUL and lone surrogates can only come from \u escapes.
    suspect = has_fraction or "\x00" in text or _SUSPECT_ESCAPE.search(text)
    if not suspect and _nesting(timesheet) <= MAX_DEPTH:
        return timesheet
    return _check_storable(timesheet, ("data", "timesheet"))


def parse_event(body: bytes) -> Event:
    document, has_fraction = _decode(body)
    if not isinstance(document, dict):
        raise EventError(400, "", "body must be a JSON object")
    try:
        _validator()(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        field, message = _describe(exc)
        raise EventError(422, field, message) from None
    timestamp = parse_datetime(document["timestamp"], "/timestamp")
    data = document["data"]
    event_type = document["type"]
    timesheet: dict[str, Any] = {}
    if event_type in SUPPORTED_TYPES:
        # Only what we act on is checked and stored: an unsupported type is acknowledged
        # whatever its data holds (its raw body is kept as it came).
        timesheet = _storable_timesheet(body, data["timesheet"], has_fraction)
    return Event(
        type=event_type,
        timestamp=timestamp,
        workspace_id=str(data["workspace_id"]),
        timesheet=timesheet,
    )

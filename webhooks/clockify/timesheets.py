"""An approved Clockify approval request and its time entries -> the stored timesheet JSON.

Pure: no I/O. The same function serves the webhook (entries read after the event) and the
reconciling poll (entries listed with the request), so both give the same rows and the same
content revision: one approval is billed once however it arrives.

What is read from a time entry (hydrated, or as an approval request lists it):
  * the day: ``timeInterval.start`` in the request owner's time zone (Clockify periods are the
    owner's local weeks or months: ``2026-11-01T23:00:00Z`` is 2 November in Berlin);
  * the length: ``timeInterval.duration`` (ISO 8601, ``PT1H30M``), else end - start;
  * ``project`` (``id``, ``name``, ``clientId``, ``clientName``) or a bare ``projectId``; an entry
    without a project is billed as the project ``NO_PROJECT`` (mappable like any other), one whose
    project was deleted keeps its id and says so in its name;
  * ``task``, ``billable``, and ``hourlyRate`` (``amount`` in CENTS, ``currency``): the rate
    Clockify applied; an amount of 0 or none means Clockify reports no rate (our table prices it).
Breaks, time off, holidays and a running timer are not billed time and are left out.

Entries are summed per day, project, task, client, billable flag and rate, in seconds, and each
sum is rounded to the nearest minute once (half up), so 3 x 20 s is a minute, not nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NO_PROJECT = "no-project"
NO_PROJECT_NAME = "No project"
NOT_WORK = frozenset({"BREAK", "TIME_OFF", "HOLIDAY"})
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class EntryError(ValueError):
    """An entry or request Clockify sent that cannot be read; the message names the field."""


def parse_instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise EntryError(f"{field}: {value!r} is not a date-time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EntryError(f"{field}: {value!r} is not a date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def owner_zone(owner: Mapping[str, Any]) -> tzinfo:
    """The owner's zone (the API says ``timeZone``, webhook samples ``timezone``); UTC if none."""
    name = owner.get("timeZone") or owner.get("timezone")
    try:
        return ZoneInfo(str(name)) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def request_period(request: Mapping[str, Any]) -> tuple[date, date]:
    """The approval period as the owner's local dates (start and end are instants)."""
    zone = owner_zone(request.get("owner") or {})
    date_range = request.get("dateRange") or {}
    start = parse_instant(date_range.get("start"), "dateRange/start").astimezone(zone).date()
    end = parse_instant(date_range.get("end"), "dateRange/end").astimezone(zone).date()
    if end < start:
        raise EntryError("dateRange/end: is before dateRange/start")
    return start, end


def duration_seconds(interval: Mapping[str, Any], field: str) -> int | None:
    """Seconds of a finished entry; None for a running timer."""
    text = interval.get("duration")
    if isinstance(text, str) and text:
        match = _DURATION.match(text)
        if match is None:
            raise EntryError(f"{field}/duration: {text!r} is not an ISO 8601 duration")
        parts = {k: Decimal(v) for k, v in match.groupdict().items() if v}
        total = (
            parts.get("d", Decimal(0)) * 86400
            + parts.get("h", Decimal(0)) * 3600
            + parts.get("m", Decimal(0)) * 60
            + parts.get("s", Decimal(0))
        )
        return int(total)
    if not interval.get("end"):
        return None
    start = parse_instant(interval.get("start"), f"{field}/start")
    end = parse_instant(interval.get("end"), f"{field}/end")
    return max(0, int((end - start).total_seconds()))


def entry_rate(raw: Any, field: str) -> dict[str, str] | None:
    """``hourlyRate`` (cents) as ``{"amount": "50.00", "currency": "USD"}``, or None."""
    if not isinstance(raw, Mapping) or raw.get("amount") in (None, 0, "0"):
        return None
    currency = raw.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        return None  # a rate without its currency cannot be trusted: our table prices it
    try:
        cents = Decimal(str(raw["amount"]))
    except InvalidOperation:
        raise EntryError(f"{field}/amount: {raw['amount']!r} is not a number") from None
    if not cents.is_finite() or cents < 0:
        raise EntryError(f"{field}/amount: must be a finite amount >= 0")
    return {"amount": str((cents / 100).quantize(Decimal("0.01"))), "currency": currency.upper()}


def _named(raw: Any, id_key: str, name_key: str) -> dict[str, str] | None:
    if not isinstance(raw, Mapping) or not raw.get(id_key):
        return None
    return {"id": str(raw[id_key]), "name": str(raw.get(name_key) or raw[id_key])}


def _project(entry: Mapping[str, Any]) -> tuple[str, str, dict[str, str] | None]:
    """(project id, name, client) of an entry; deleted and missing projects are named so."""
    project = entry.get("project") if isinstance(entry.get("project"), Mapping) else None
    project_id = (project or {}).get("id") or entry.get("projectId")
    if not project_id:
        return NO_PROJECT, NO_PROJECT_NAME, None
    name = (project or {}).get("name")
    if not name:
        name = f"Deleted project {project_id}"
    client = _named(project, "clientId", "clientName") if project else None
    return str(project_id), str(name), client


def _task(entry: Mapping[str, Any]) -> dict[str, str] | None:
    task = entry.get("task")
    if isinstance(task, Mapping) and task.get("id"):
        return {"id": str(task["id"]), "name": str(task.get("name") or task["id"])}
    if entry.get("taskId"):
        return {"id": str(entry["taskId"]), "name": str(entry["taskId"])}
    return None


def _row_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    def ident(value: Any) -> str:
        return "" if value is None else str(value["id"])

    rate = row["rate"]
    return (
        row["date"],
        row["project_id"],
        ident(row["task"]),
        ident(row["client"]),
        str(row["billable"]),
        "" if rate is None else f"{rate['amount']} {rate['currency']}",
    )


def entry_rows(
    entries: Iterable[Any], zone: tzinfo, period: tuple[date, date]
) -> list[dict[str, Any]]:
    """Billable-time rows, one per day/project/task/client/billable/rate, minutes rounded once."""
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        field = f"entries/{index}"
        if not isinstance(entry, Mapping) or str(entry.get("type") or "REGULAR") in NOT_WORK:
            continue
        interval = entry.get("timeInterval") or {}
        seconds = duration_seconds(interval, f"{field}/timeInterval")
        if not seconds:
            continue  # running, or zero length
        day = parse_instant(interval.get("start"), f"{field}/timeInterval/start").astimezone(zone)
        if not period[0] <= day.date() <= period[1]:
            continue  # not this period's time (an overlapping read of the member's entries)
        project_id, project_name, client = _project(entry)
        billable = entry.get("billable")
        row = {
            "date": day.date().isoformat(),
            "project_id": project_id,
            "project_name": project_name,
            "client": client,
            "task": _task(entry),
            "billable": billable if isinstance(billable, bool) else None,
            "rate": entry_rate(entry.get("hourlyRate"), f"{field}/hourlyRate"),
            "seconds": 0,
        }
        grouped.setdefault(_row_key(row), row)["seconds"] += seconds
    rows = []
    for key in sorted(grouped):
        row = grouped[key]
        seconds = row.pop("seconds")
        rows.append({**row, "minutes": (seconds + 30) // 60})
    return [row for row in rows if row["minutes"] > 0]


def member_of(request: Mapping[str, Any]) -> dict[str, Any]:
    owner = request.get("owner") or {}
    creator = request.get("creator") or {}
    user_id = owner.get("userId") or creator.get("userId")
    if not user_id:
        raise EntryError("owner/userId: the approval request names no member")
    email = creator.get("userEmail") if creator.get("userId") == user_id else None
    return {
        "id": str(user_id),
        "name": str(owner.get("userName") or creator.get("userName") or f"Member {user_id}"),
        "email": email or None,
    }


def build_timesheet(request: Mapping[str, Any], entries: Iterable[Any]) -> dict[str, Any]:
    """The stored timesheet (JSON-ready) of one approved request and its entries."""
    if not request.get("id"):
        raise EntryError("id: the approval request has no id")
    period = request_period(request)
    zone = owner_zone(request.get("owner") or {})
    status = request.get("status") or {}
    approved_at = status.get("updatedAt")
    return {
        "id": str(request["id"]),
        "member": member_of(request),
        "date_from": period[0].isoformat(),
        "date_to": period[1].isoformat(),
        "approved_at": parse_instant(approved_at, "status/updatedAt").isoformat()
        if approved_at
        else None,
        "rows": entry_rows(entries, zone, period),
    }

"""A timesheet as WebWork's API lists it -> the v1 event the pipeline reads (and what of it a
poll compares between passes).

A list page already holds each timesheet's rows (``daily_breakdown``): the event is built from
them and the cached catalog (billable and client per project), so billing a polled approval
needs no further read of WebWork.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from webhooks.webwork.catalog import Catalog
from webhooks.webwork.events import EventError
from webhooks.webwork.names import MAX_NAME, person_name


def rows_hash(raw: dict[str, Any]) -> str:
    """A hash of the timesheet's rows as WebWork lists them (day, project, contract, minutes)."""
    breakdown = raw.get("daily_breakdown") or {}
    canonical = []
    if isinstance(breakdown, dict):
        for day in sorted(breakdown):
            rows = breakdown[day] if isinstance(breakdown[day], list) else []
            canonical.append(
                [
                    day,
                    sorted(
                        [
                            str(r.get("project_id")),
                            str(r.get("contract_id")),
                            str(r.get("total_minutes")),
                        ]
                        for r in rows
                        if isinstance(r, dict)
                    ),
                ]
            )
    text = json.dumps(canonical, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def named_ids(raw: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The project and contract ids a listed timesheet's rows name."""
    projects: set[str] = set()
    contracts: set[str] = set()
    breakdown = raw.get("daily_breakdown")
    for rows in breakdown.values() if isinstance(breakdown, dict) else ():
        for row in rows if isinstance(rows, list) else ():
            if not isinstance(row, dict):
                continue
            if row.get("project_id") not in (None, ""):
                projects.add(str(row["project_id"]))
            if row.get("contract_id") not in (None, ""):
                contracts.add(str(row["contract_id"]))
    return projects, contracts


def member_of(raw: dict[str, Any]) -> dict[str, Any]:
    member = raw.get("member")
    user_id = raw.get("user_id")
    if isinstance(member, dict):
        mid = member.get("id", user_id)
        name = person_name(member)
        email = member.get("email")
    else:
        mid, name, email = user_id, (str(member) if member else None), None
    if mid is None or mid == "":
        raise EventError(422, "/member/id", "the timesheet names no member (user_id)")
    return {"id": str(mid), "name": str(name or f"Member {mid}")[:MAX_NAME], "email": email}


def _minutes(row: Any, where: str) -> int:
    if not isinstance(row, dict) or row.get("project_id") in (None, ""):
        raise EventError(422, f"{where}/project_id", "is missing")
    minutes = row.get("total_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 <= minutes <= 1440:
        raise EventError(422, f"{where}/total_minutes", f"{minutes!r} is not 0..1440 minutes")
    return minutes


def enrich_row(row: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """A row with its project's billable flag and client from the catalog.

    ``billable`` is set only when WebWork said it; a polled row without it has a billability
    nobody knows yet, and is not billed until it is known (``fill.check_polled``)."""
    pid = str(row["project_id"])
    project = catalog.projects.get(pid, {})
    enriched: dict[str, Any] = {
        "project_id": pid,
        "project_name": str(row.get("project_name") or project.get("name") or pid)[:MAX_NAME],
        "contract_id": None if row.get("contract_id") is None else str(row["contract_id"]),
        "total_minutes": row["total_minutes"],
    }
    if project.get("billable") is not None:
        enriched["billable"] = bool(project["billable"])
    if project.get("client"):
        enriched["client"] = project["client"]
    return enriched


def event_timesheet(raw: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """A WebWork timesheet as the v1 event's timesheet, rows enriched from the catalog
    (billable from the project, client from its viewers). Raises EventError if malformed."""
    breakdown = raw.get("daily_breakdown")
    if not isinstance(breakdown, dict):
        raise EventError(422, "/daily_breakdown", "is missing or not an object of days")
    rows_by_day: dict[str, list[dict[str, Any]]] = {}
    for day, rows in breakdown.items():
        if not isinstance(rows, list):
            raise EventError(422, f"/daily_breakdown/{day}", "is not a list of rows")
        for index, row in enumerate(rows):
            _minutes(row, f"/daily_breakdown/{day}/{index}")
        rows_by_day[str(day)] = [enrich_row(row, catalog) for row in rows]
    timesheet = {
        "id": str(raw["id"]),
        "member": member_of(raw),
        "date_from": raw.get("date_from"),
        "date_to": raw.get("date_to"),
        "status": "approved",
        "daily_breakdown": rows_by_day,
    }
    if raw.get("user_id") is not None:
        timesheet["user_id"] = str(raw["user_id"])
    if isinstance(raw.get("total_minutes"), int):
        timesheet["total_minutes"] = raw["total_minutes"]
    return timesheet


def unknown_billability(timesheet: dict[str, Any]) -> list[str]:
    """Project ids of an event timesheet's rows whose billability is not known."""
    found: list[str] = []
    for rows in (timesheet.get("daily_breakdown") or {}).values():
        for row in rows:
            if "billable" not in row and str(row["project_id"]) not in found:
                found.append(str(row["project_id"]))
    return found


def event_body(kind: str, tracker_ws: str, timesheet: dict[str, Any], when: datetime) -> bytes:
    return json.dumps(
        {
            "type": kind,
            "version": 1,
            "timestamp": when.isoformat().replace("+00:00", "Z"),
            "data": {"workspace_id": tracker_ws, "timesheet": timesheet},
        },
        separators=(",", ":"),
    ).encode()

"""Events and helpers shared by the admin, mapping and browser tests."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import Draft, DraftStatus, LocalCustomer

APPROVAL: dict[str, Any] = {
    "type": "timesheet.approved",
    "timestamp": "2026-11-20T10:00:00Z",
    "data": {
        "workspace_id": "4242",
        "timesheet": {
            "id": "ts-1001",
            "user_id": "u7",
            "member": {"id": "u7", "name": "Mia Member", "email": "mia@agency.example"},
            "date_from": "2026-11-16",
            "date_to": "2026-11-22",
            "status": "approved",
            "approved_at": "2026-11-20T09:59:00Z",
            "total_minutes": 120,
            "daily_breakdown": {
                "2026-11-16": [
                    {
                        "project_id": "p1",
                        "project_name": "Website",
                        "contract_id": "c1",
                        "total_minutes": 120,
                        "billable": True,
                        "rate": {"amount": "27.50", "currency": "USD"},
                        "client": {"id": "cl1", "name": "Globex", "email": "ap@globex.example"},
                    }
                ]
            },
        },
    },
}


def approval(timesheet_id: str = "ts-1001", *, tracker_workspace_id: str = "4242", **row: Any):
    """The unmapped-project approval; ``row`` overrides fields of its one time row."""
    event = copy.deepcopy(APPROVAL)
    event["data"]["workspace_id"] = tracker_workspace_id
    event["data"]["timesheet"]["id"] = timesheet_id
    day = event["data"]["timesheet"]["daily_breakdown"]["2026-11-16"][0]
    for key, value in row.items():
        if value is None:
            day.pop(key, None)
        else:
            day[key] = value
    return event


def add_local_customer(
    workspace_id: int, name: str, email: str | None = None, currency: str = "USD"
) -> str:
    with db.session_scope() as s:
        row = LocalCustomer(workspace_id=workspace_id, name=name, email=email, currency=currency)
        s.add(row)
        s.flush()
        return str(row.id)


def live_drafts(workspace_id: int) -> list[Draft]:
    with db.new_session() as s:
        return list(
            s.scalars(
                select(Draft)
                .where(Draft.workspace_id == workspace_id, Draft.status != DraftStatus.SUPERSEDED)
                .order_by(Draft.id)
            )
        )

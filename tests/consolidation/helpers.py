"""Builders for consolidation tests: approvals of one customer's project by several members."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import Draft, Invoice, InvoiceMode, Workspace

CLIENT = {"id": "cl-acme", "name": "Acme Corp", "email": "ap@acme.example"}
MEMBERS = {
    "u-ada": ("Ada Lovelace", "ada@example.com"),
    "u-bob": ("Bob Babbage", "bob@example.com"),
}


def approval(
    ts_id: str,
    member_id: str,
    days: dict[date, int],
    *,
    timestamp: str = "2026-11-30T09:00:00Z",
    rate: str = "27.50",
    project: str = "p-web",
) -> dict[str, Any]:
    """A ``timesheet.approved`` event: ``days`` maps each day to billable minutes on Acme."""
    name, email = MEMBERS[member_id]
    first, last = min(days), max(days)
    return {
        "type": "timesheet.approved",
        "timestamp": timestamp,
        "data": {
            "workspace_id": "4242",
            "timesheet": {
                "id": ts_id,
                "user_id": member_id,
                "member": {"id": member_id, "name": name, "email": email},
                "date_from": first.isoformat(),
                "date_to": last.isoformat(),
                "status": "approved",
                "approved_at": timestamp,
                "total_minutes": sum(days.values()),
                "daily_breakdown": {
                    day.isoformat(): [
                        {
                            "project_id": project,
                            "project_name": "Website",
                            "contract_id": f"c-{member_id}",
                            "total_minutes": minutes,
                            "billable": True,
                            "rate": {"amount": rate, "currency": "USD"},
                            "client": dict(CLIENT),
                        }
                    ]
                    for day, minutes in sorted(days.items())
                },
            },
        },
    }


def withdrawal(ts_id: str, timestamp: str = "2026-11-30T10:00:00Z") -> dict[str, Any]:
    return {
        "type": "timesheet.unapproved",
        "timestamp": timestamp,
        "data": {"workspace_id": "4242", "timesheet": {"id": ts_id, "status": "open"}},
    }


def set_consolidation(workspace_id: int, **settings: Any) -> None:
    with db.session_scope() as s:
        ws = s.get(Workspace, workspace_id)
        assert ws is not None
        ws.settings = {
            **(ws.settings or {}),
            "consolidation": "per_period",
            "period": "weekly",
            **settings,
        }


def draft_rows() -> list[Draft]:
    db.session.expire_all()
    return list(db.session.scalars(select(Draft).order_by(Draft.id)))


def period_invoices() -> list[Invoice]:
    """The per_period invoice records (voided ones too), oldest first."""
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Invoice).where(Invoice.mode == InvoiceMode.PER_PERIOD).order_by(Invoice.id)
        )
    )

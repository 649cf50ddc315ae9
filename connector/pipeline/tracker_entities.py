"""The tracker's members, projects and clients an approval (or a source's catalog) names,
stored so the mapping page can list them before anyone types an id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connector import billing
from connector.models import TrackerEntity, utcnow


def record_tracker_entities(
    s: Session, workspace_id: int, timesheet: billing.TimesheetInput
) -> None:
    seen: dict[tuple[str, str], dict[str, Any]] = {
        ("member", timesheet.member.id): {
            "name": timesheet.member.name,
            "email": timesheet.member.email,
            "client_id": None,
        }
    }
    for row in timesheet.rows:
        seen[("project", row.project_id)] = {
            "name": row.project_name,
            "email": None,
            "client_id": row.client.id if row.client else None,
        }
        if row.client:
            seen[("client", row.client.id)] = {
                "name": row.client.name,
                "email": row.client.email,
                "client_id": None,
            }
    upsert_tracker_entities(s, workspace_id, seen)


# Rows per upsert statement: 7 parameters each, far below PostgreSQL's 65,535 per statement.
UPSERT_CHUNK = 500


def upsert_tracker_entities(
    s: Session, workspace_id: int, seen: Mapping[tuple[str, str], Mapping[str, Any]]
) -> None:
    """Insert or refresh the projects/clients a source saw ((kind, id) -> name, email,
    client_id), so the mapping page lists them; shared by approvals and a tracker's catalog."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    # A few statements of many rows, not one per entity (an approval names ~10); in key order,
    # so two transactions upserting the same entities lock them in the same order.
    rows = [
        {
            "workspace_id": workspace_id,
            "kind": kind,
            "tracker_id": tracker_id,
            "last_seen_at": now,
            "name": values.get("name"),
            "email": values.get("email"),
            "client_id": values.get("client_id"),
        }
        for (kind, tracker_id), values in sorted(seen.items())
    ]
    for start in range(0, len(rows), UPSERT_CHUNK):
        stmt = insert(TrackerEntity).values(rows[start : start + UPSERT_CHUNK])
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "kind", "tracker_id"],
                set_={
                    "name": stmt.excluded.name,
                    "email": stmt.excluded.email,
                    "client_id": stmt.excluded.client_id,
                    "last_seen_at": now,
                },
            )
        )

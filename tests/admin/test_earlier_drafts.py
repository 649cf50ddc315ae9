"""An approval's page lists "Earlier drafts" only when drafts that reached the books were
replaced: holds planned again once fixed made no invoice (issue 21 item 8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector import db, pipeline
from connector.models import Draft, DraftStatus
from tests.helpers import event, map_clients_locally

SAMPLE = "timesheet_approved__three_customers"


def _approval_html(admin_client: Any, workspace: Any) -> str:
    with db.session_scope() as s:
        ts_pk = s.scalars(
            select(Draft.timesheet_pk).where(Draft.workspace_id == workspace.id)
        ).first()
    return admin_client.get(f"/workspaces/{workspace.id}/approvals/{ts_pk}").get_data(as_text=True)


def test_holds_released_by_a_mapping_are_no_earlier_drafts(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    post_event(workspace, event(SAMPLE))  # held: nothing mapped
    map_clients_locally(workspace.id)
    pipeline.release_holds(workspace.id)
    with db.session_scope() as s:
        statuses = set(s.scalars(select(Draft.status).where(Draft.workspace_id == workspace.id)))
    assert DraftStatus.DRAFTED in statuses and DraftStatus.SUPERSEDED in statuses
    assert "Earlier drafts" not in _approval_html(admin_client, workspace)


def test_drafts_replaced_by_an_edited_timesheet_are_listed(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    map_clients_locally(workspace.id)
    post_event(workspace, event(SAMPLE))
    edited = event(SAMPLE)
    day = next(iter(edited["data"]["timesheet"]["daily_breakdown"].values()))
    day[0]["total_minutes"] += 30
    edited["data"]["timesheet"]["total_minutes"] += 30
    edited["timestamp"] = "2026-11-24T09:15:02Z"  # the edit, approved again a day later
    post_event(workspace, edited)
    html = _approval_html(admin_client, workspace)
    assert "Earlier drafts" in html

"""The approval page draws a hold's fix buttons from what planning recorded on the held draft:
no billing run per page view (issue 22)."""

from __future__ import annotations

from typing import Any

import pytest

from connector import billing, db
from connector.models import Draft, DraftStatus
from tests.admin.events import approval, live_drafts
from tests.helpers import map_clients_locally


def test_an_unmapped_projects_hold_keeps_its_ids_and_the_page_does_not_bill(
    admin_client: Any, workspace: Any, post_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post_event(workspace, approval()).status_code == 202
    [held] = live_drafts(workspace.id)
    assert held.status == DraftStatus.NEEDS_MAPPING
    assert held.hold_subjects == {"project_ids": ["p1"], "client_ids": ["cl1"]}

    monkeypatch.setattr(billing, "bill", _refuse)
    page = admin_client.get(f"/workspaces/{workspace.id}/approvals?status=held").data.decode()
    assert f"/workspaces/{workspace.id}/mappings/project/p1" in page
    assert f"/workspaces/{workspace.id}/mappings/client/cl1" in page


def test_a_missing_rate_names_only_the_projects_without_one(
    admin_client: Any, workspace: Any, post_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    map_clients_locally(workspace.id, {"cl1": ("Globex", "ap@globex.example")})
    doc = approval(rate=None)  # no rate on the row and none in the tables
    day = doc["data"]["timesheet"]["daily_breakdown"]["2026-11-16"]
    day.append({**day[0], "project_id": "p2", "project_name": "Shop", "rate": day[0].get("rate")})
    day[1]["rate"] = {"amount": "40.00", "currency": "USD"}  # p2 has its own
    assert post_event(workspace, doc).status_code == 202
    [held] = live_drafts(workspace.id)
    assert held.status == DraftStatus.NEEDS_RATE
    assert held.hold_subjects == {"project_ids": ["p1"], "client_ids": ["cl1"]}

    monkeypatch.setattr(billing, "bill", _refuse)
    page = admin_client.get(f"/workspaces/{workspace.id}/approvals?status=held").data.decode()
    assert "project_id=p1" in page
    assert "project_id=p2" not in page


def test_a_row_held_before_the_ids_were_kept_falls_back_to_what_it_covers(
    admin_client: Any, workspace: Any, post_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert post_event(workspace, approval()).status_code == 202
    [held] = live_drafts(workspace.id)
    with db.session_scope() as s:
        s.get(Draft, held.id).hold_subjects = None  # as migrated
    monkeypatch.setattr(billing, "bill", _refuse)
    page = admin_client.get(f"/workspaces/{workspace.id}/approvals?status=held").data.decode()
    assert f"/workspaces/{workspace.id}/mappings/project/p1" in page
    assert f"/workspaces/{workspace.id}/mappings/client/cl1" in page


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the page ran billing")

"""Names as WebWork gives them: people as firstname + lastname, a workspace's workspace_name;
the older single ``name`` still read."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import select

from connector import db
from connector.models import Connection, Draft, TrackerEntity
from webhooks.webwork import connection as conn
from webhooks.webwork.names import person_name
from webhooks.webwork.poller import poll_workspace
from webhooks.webwork.tests.conftest import ADA, week_rows


def token_without_names(sub: str) -> str:
    """A JWT like WebWork's: a subject, no name or email claims."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'scopes': ['read']})}.sig"


@pytest.mark.parametrize(
    ("person", "name"),
    [
        ({"firstname": "Mia", "lastname": "Wong", "email": "mia@agency.example"}, "Mia Wong"),
        ({"firstname": "Mia", "lastname": "", "email": "mia@agency.example"}, "Mia"),
        ({"firstname": " ", "lastname": None, "email": "mia@agency.example"}, "mia@agency.example"),
        ({"name": "Mia Wong", "email": "mia@agency.example"}, "Mia Wong"),
        ({"full_name": "Mia Wong"}, "Mia Wong"),
        ({}, None),
    ],
)
def test_person_name_reads_both_shapes(person: dict[str, Any], name: str | None) -> None:
    assert person_name(person) == name


@pytest.mark.parametrize("legacy", [False, True])
def test_lines_holds_and_clients_carry_real_names(
    workspace: Any, webwork: Any, connected: str, legacy: bool
) -> None:
    webwork.legacy_names = legacy
    webwork.viewers = [
        webwork.viewer(1, 9001, "Globex Corporation", "ap@globex.example", project_id=101)
    ]
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    poll_workspace(workspace.id)  # nothing mapped: every customer is held, naming Ada
    with db.new_session() as s:
        drafts = list(s.scalars(select(Draft)))
        entities = {(e.kind, e.tracker_id): e.name for e in s.scalars(select(TrackerEntity))}
    assert drafts and all("Ada Lovelace" in (d.hold_message or "") for d in drafts)
    assert not any("ada@example.com" in (d.hold_message or "") for d in drafts)
    assert entities[("client", "9001")] == "Globex Corporation"
    assert entities[("member", "77")] == "Ada Lovelace"


def test_mapped_lines_name_the_member(
    workspace: Any, webwork: Any, connected: str, mapped: Any
) -> None:
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    poll_workspace(workspace.id)
    with db.new_session() as s:
        lines = [line["description"] for d in s.scalars(select(Draft)) for line in d.lines]
    assert lines and all("Ada Lovelace" in text for text in lines)


def test_connected_user_and_workspace_named_from_webwork(workspace: Any, webwork: Any) -> None:
    webwork.add_member(501, "Olive Owner", "olive@example.com")
    token = token_without_names("501")
    webwork.tokens[token] = "owner"
    meta = conn.connect_with_token(workspace.id, "4242", token, connected_by="t")
    assert meta["connected_as"] == "Olive Owner <olive@example.com>"
    assert meta["webwork_workspace_name"] == "Acme WebWork"
    assert [path for (_, path, _) in webwork.calls] == ["workspaces", "members"]
    with db.new_session() as s:
        row = s.scalars(select(Connection).where(Connection.provider == "webwork")).one()
        assert row.account_name == "Olive Owner <olive@example.com>"


def test_connected_user_without_a_member_list_falls_back(workspace: Any, webwork: Any) -> None:
    token = token_without_names("501")
    webwork.tokens[token] = "owner"
    webwork.legacy_names = True  # and the workspace as {"name": ...}
    meta = conn.connect_with_token(workspace.id, "4242", token, connected_by="t")
    assert meta["connected_as"] == "WebWork user 501"
    assert meta["webwork_workspace_name"] == "Acme WebWork"

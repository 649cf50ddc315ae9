"""Clockify in the console and the CLI: the card and its key form, the mapping page listing
Clockify's clients and projects, and `flask tracker connect --source clockify --token-stdin`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from connector import db
from connector.models import Connection, ConnectionStatus, TrackerEntity, Workspace
from tests.app_fixtures import csrf_token
from webhooks import polling
from webhooks.clockify.tests.conftest import GLOBEX, PIPELINE, WEBSITE, poll
from webhooks.clockify.tests.fake import FakeClockify


@pytest.fixture
def admin(app: Any, cf_workspace: Any, make_admin: Any) -> Any:
    from connector.auth import session_user_id
    from connector.models import AdminUser

    user_id = make_admin(cf_workspace)
    test_client = app.test_client()
    with db.new_session() as s, test_client.session_transaction() as sess:
        sess["_user_id"] = session_user_id(s.get(AdminUser, user_id))
        sess["_fresh"] = True
    return test_client


def _status(workspace_id: int) -> str | None:
    with db.new_session() as s:
        row = s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == "clockify"
            )
        ).one_or_none()
        return None if row is None else row.status


def test_the_card_connects_with_a_pasted_key_and_says_reconnect_when_refused(
    app: Any, admin: Any, clockify_app: FakeClockify, cf_workspace: Any
) -> None:
    page = f"/workspaces/{cf_workspace.id}/connections"
    html = admin.get(page).get_data(as_text=True)
    assert 'id="clockify-token"' in html and "Clockify API key" in html
    key = clockify_app.add_key()
    response = admin.post(
        f"{page}/tracker/token",
        data={"token": key, "csrf_token": csrf_token(admin, page)},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Clockify connected" in html and key not in html
    assert _status(cf_workspace.id) == ConnectionStatus.CONNECTED
    assert len(clockify_app.webhooks) == 1

    # The key is revoked in Clockify: the periodic poll holds the connection; the card says so.
    clockify_app.revoke(key)
    with app.app_context():
        polling.schedule_poll("clockify", cf_workspace.id, delay_seconds=0.0, run_now=True)
    assert _status(cf_workspace.id) == ConnectionStatus.RECONNECT_NEEDED
    html = admin.get(page).get_data(as_text=True)
    assert 'id="reconnect-clockify"' in html and "Reconnect Clockify" in html


def test_a_refused_key_is_said_in_plain_words_on_the_card(
    admin: Any, clockify_app: FakeClockify, cf_workspace: Any
) -> None:
    page = f"/workspaces/{cf_workspace.id}/connections"
    response = admin.post(
        f"{page}/tracker/token",
        data={"token": "key-wrong", "csrf_token": csrf_token(admin, page)},
        follow_redirects=True,
    )
    assert "did not accept this API key" in response.get_data(as_text=True)
    assert _status(cf_workspace.id) is None


def test_clients_and_projects_are_listed_for_mapping_after_the_poll(
    app: Any, admin: Any, clockify_app: FakeClockify, cf_workspace: Any, connected: str
) -> None:
    with app.app_context():
        assert "client(s) and project(s) read for the mapping page" in poll(cf_workspace.id)
    with db.new_session() as s:
        found = {
            (e.kind, e.tracker_id): (e.name, e.client_id)
            for e in s.scalars(
                select(TrackerEntity).where(TrackerEntity.workspace_id == cf_workspace.id)
            )
        }
    assert found[("client", GLOBEX)] == ("Globex Corporation", None)
    assert found[("project", WEBSITE)] == ("Website", GLOBEX)
    assert found[("project", PIPELINE)][0] == "Data Pipeline"
    html = admin.get(f"/workspaces/{cf_workspace.id}/mappings").get_data(as_text=True)
    assert "Globex Corporation" in html and "Website" in html


def test_cli_connect_with_the_key_on_stdin(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any
) -> None:
    key = clockify_app.add_key()
    result = app.test_cli_runner().invoke(
        args=["tracker", "connect", str(cf_workspace.id), "--source", "clockify", "--token-stdin"],
        input=key + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Clockify connected" in result.output and key not in result.output
    assert _status(cf_workspace.id) == ConnectionStatus.CONNECTED
    assert len(clockify_app.webhooks) == 1
    result = app.test_cli_runner().invoke(args=["tracker", "disconnect", str(cf_workspace.id)])
    assert result.exit_code == 0, result.output
    assert clockify_app.webhooks == {}


def test_cli_workspaces_create_tracker_clockify_then_connect(
    app: Any, clockify_app: FakeClockify
) -> None:
    import json

    from webhooks.clockify.tests.fake import WORKSPACE

    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "workspaces",
            "create",
            "Acme",
            "--tracker",
            "clockify",
            "--tracker-workspace-id",
            WORKSPACE,
            "--auto-invoicing",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["tracker"] == "clockify"
    result = runner.invoke(
        args=["tracker", "connect", str(created["id"]), "--source", "clockify", "--token-stdin"],
        input=clockify_app.add_key(),
    )
    assert result.exit_code == 0, result.output
    [hook] = clockify_app.webhooks.values()
    assert hook["url"] == created["webhook_url"]


def test_a_clockify_workspace_id_is_checked_where_it_is_entered(app: Any) -> None:
    """An id Clockify can never send (not a 24-hex ObjectId) is refused in words, nothing kept."""
    runner = app.test_cli_runner()
    bad = runner.invoke(
        args=["workspaces", "create", "Acme", "--tracker", "clockify",
              "--tracker-workspace-id", "<script>"]
    )  # fmt: skip
    assert bad.exit_code != 0 and "24 characters 0-9 and a-f" in bad.output
    assert db.session.scalar(select(func.count()).select_from(Workspace)) == 0


def test_the_overview_shows_no_webhook_url_to_paste_for_clockify(
    admin: Any, cf_workspace: Any
) -> None:
    """Clockify's webhook is registered on connect with its own token: the overview offers no
    webhook URL or signing secret to paste anywhere."""
    page = admin.get(f"/workspaces/{cf_workspace.id}").get_data(as_text=True)
    assert "Connect Clockify" in page
    assert "/webhooks/clockify/" not in page and "signing secret" not in page

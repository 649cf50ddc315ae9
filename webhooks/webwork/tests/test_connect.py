"""Connecting WebWork: a personal access token (console, CLI) and OAuth2 with refresh."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from connector import db, worker
from connector.models import Connection, ConnectionStatus, Job, JobState, utcnow
from tests.app_fixtures import csrf_token
from webhooks.webwork import connection as conn
from webhooks.webwork.poller import poll_workspace
from webhooks.webwork.polls import JOB_KIND
from webhooks.webwork.tests.conftest import ADA, week_rows
from webhooks.webwork.tests.fake import status


def webwork_row() -> Connection:
    with db.new_session() as s:
        return s.scalars(select(Connection).where(Connection.provider == "webwork")).one()


def test_console_token_is_validated_by_one_call_stored_encrypted_and_masked(
    admin_client: Any, workspace: Any, webwork: Any
) -> None:
    token = webwork.add_token("501", name="Olive Owner")
    page = f"/workspaces/{workspace.id}/connections"
    response = admin_client.post(
        f"{page}/webwork/token",
        data={"token": token, "csrf_token": csrf_token(admin_client, page)},
    )
    assert response.status_code == 302
    assert len(webwork.calls) == 1 and webwork.calls[0][1] == "workspaces"
    row = webwork_row()
    assert row.status == ConnectionStatus.CONNECTED and row.account_id == "4242"
    assert token not in (row.credentials_encrypted or "")  # encrypted at rest
    html = admin_client.get(page).get_data(as_text=True)
    assert "Olive Owner" in html and token not in html
    assert conn.mask_token(token) in html
    assert "Poll now" in html and "Disconnect WebWork" in html
    # A poll job is scheduled for the workspace.
    with db.new_session() as s:
        assert s.scalars(select(Job).where(Job.kind == JOB_KIND)).one().state == JobState.PENDING


def test_wrong_workspace_and_bad_tokens_are_refused_clearly(
    admin_client: Any, workspace: Any, webwork: Any
) -> None:
    page = f"/workspaces/{workspace.id}/connections"
    webwork.workspace_id = "9999"  # the token's user sees another WebWork workspace only
    token = webwork.add_token()
    admin_client.post(
        f"{page}/webwork/token", data={"token": token, "csrf_token": csrf_token(admin_client, page)}
    )
    html = admin_client.get(page).get_data(as_text=True)
    assert "cannot see workspace 4242" in html
    with pytest.raises(conn.ConnectError, match="did not accept this token"):
        conn.connect_with_token(workspace.id, "4242", "not-a-token", connected_by="t")
    member = webwork.add_token("8", role="member")
    with pytest.raises(conn.ConnectError, match="Owner or Executive manager"):
        conn.connect_with_token(workspace.id, "4242", member, connected_by="t")
    with db.new_session() as s:
        assert s.scalars(select(Connection)).first() is None  # nothing half-written


def test_cli_connect_reads_the_token_from_stdin(app: Any, workspace: Any, webwork: Any) -> None:
    token = webwork.add_token("501")
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["tracker", "connect", str(workspace.id), "--token-stdin"], input=token + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "connected" in result.output and token not in result.output
    assert webwork_row().status == ConnectionStatus.CONNECTED
    result = runner.invoke(args=["tracker", "status", str(workspace.id)])
    assert "status: connected" in result.output
    bad = runner.invoke(
        args=["tracker", "connect", str(workspace.id), "--token-stdin"], input="nope\n"
    )
    assert bad.exit_code != 0 and "did not accept" in bad.output


def _oauth_connect(admin_client: Any, workspace: Any, webwork: Any) -> None:
    response = admin_client.get(f"/workspaces/{workspace.id}/connections/webwork/connect")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.location).query)
    assert query["scope"] == ["read"] and query["client_id"] == ["ww-client"]
    webwork.codes["code-1"] = "501"
    done = admin_client.get(f"/connections/webwork/callback?code=code-1&state={query['state'][0]}")
    assert done.status_code == 302, done.get_data(as_text=True)


def test_oauth_state_is_bound_to_the_admin_session(
    admin_client: Any, workspace: Any, webwork: Any
) -> None:
    admin_client.get(f"/workspaces/{workspace.id}/connections/webwork/connect")
    forged = admin_client.get("/connections/webwork/callback?code=x&state=forged")
    assert forged.status_code == 400 and "does not belong" in forged.get_data(as_text=True)
    _oauth_connect(admin_client, workspace, webwork)
    row = webwork_row()
    assert row.status == ConnectionStatus.CONNECTED and (row.meta or {})["kind"] == "oauth"


def test_a_copy_of_the_cookie_taken_before_the_callback_cannot_replay_it(
    admin_client: Any, workspace: Any, webwork: Any
) -> None:
    """Issue 20 item 7: with the state in the cookie, a copy taken before the callback replayed
    it and WebWork's token endpoint was called a second time."""
    response = admin_client.get(f"/workspaces/{workspace.id}/connections/webwork/connect")
    state = parse_qs(urlsplit(response.location).query)["state"][0]
    copied = admin_client.get_cookie("session").value
    webwork.codes["code-1"] = "501"
    callback = f"/connections/webwork/callback?code=code-1&state={state}"
    assert admin_client.get(callback).status_code == 302

    admin_client.set_cookie("session", copied)
    replay = admin_client.get(callback)

    assert replay.status_code == 400
    assert "already used" in replay.get_data(as_text=True)
    assert len(webwork.token_calls) == 1


def test_oauth_refresh_is_single_flight_and_stores_the_rotated_token_before_use(
    admin_client: Any, workspace: Any, webwork: Any, mapped: Any
) -> None:
    _oauth_connect(admin_client, workspace, webwork)
    store = conn.store_for(workspace.id)
    creds = store.load()
    creds["expires_at"] = time.time() + 60  # about to expire: refreshed before the poll
    store.save(creds)
    webwork.add_timesheet("ts-1", ADA, "2026-11-02", "2026-11-08", week_rows())
    poll_workspace(workspace.id)
    after = store.load()
    assert after["refresh_token"] != creds["refresh_token"]  # rotated and stored
    assert [c["grant_type"] for c in webwork.token_calls] == [
        ["authorization_code"],
        ["refresh_token"],
    ]
    # An access token rejected mid-poll (expired early): refreshed once, the poll goes on.
    webwork.tokens.pop(after["access_token"])
    webwork.get("ts-1")["status"] = "submitted"
    assert poll_workspace(workspace.id).withdrawals == 1
    assert len(webwork.token_calls) == 3


def test_invalid_grant_holds_reconnect_banner_and_jobs_wait(
    admin_client: Any, workspace: Any, webwork: Any
) -> None:
    _oauth_connect(admin_client, workspace, webwork)
    store = conn.store_for(workspace.id)
    creds = store.load()
    webwork.tokens.pop(creds["access_token"])  # revoked in WebWork
    webwork.refresh_tokens.clear()
    with db.new_session() as s:
        job_id = s.scalars(select(Job.id).where(Job.kind == JOB_KIND)).one()
        s.get(Job, job_id).next_attempt_at = s.get(Job, job_id).created_at
        s.commit()
    # Held, not parked: the job ends and the next one re-checks on the slow schedule.
    assert worker.run_job(job_id) == JobState.DONE
    row = webwork_row()
    assert row.status == ConnectionStatus.RECONNECT_NEEDED
    html = admin_client.get(f"/workspaces/{workspace.id}/connections").get_data(as_text=True)
    assert "Reconnect WebWork" in html and "invalid_grant" in html
    # Reconnecting brings the scheduled poll forward to now.
    _oauth_connect(admin_client, workspace, webwork)
    with db.new_session() as s:
        pending = s.scalars(
            select(Job).where(Job.kind == JOB_KIND, Job.state == JobState.PENDING)
        ).one()
        assert pending.next_attempt_at <= utcnow()
    assert webwork_row().status == ConnectionStatus.CONNECTED


def test_token_endpoint_outage_is_retryable_not_a_reconnect(
    admin_client: Any, workspace: Any, webwork: Any
) -> None:
    _oauth_connect(admin_client, workspace, webwork)
    store = conn.store_for(workspace.id)
    creds = store.load()
    creds["expires_at"] = 0
    store.save(creds)
    webwork.fail_next(status(503))
    with pytest.raises(conn.Unavailable):
        poll_workspace(workspace.id)
    assert webwork_row().status == ConnectionStatus.CONNECTED
    assert store.load()["refresh_token"] == creds["refresh_token"]


def test_disconnect_stops_polling(admin_client: Any, workspace: Any, connected: str) -> None:
    page = f"/workspaces/{workspace.id}/connections"
    admin_client.post(
        f"{page}/webwork/disconnect", data={"csrf_token": csrf_token(admin_client, page)}
    )
    assert webwork_row().status == ConnectionStatus.DISCONNECTED
    assert webwork_row().credentials_encrypted is None
    with db.new_session() as s:
        assert all(j.state == JobState.DONE for j in s.scalars(select(Job)))
    assert "Not connected" in admin_client.get(page).get_data(as_text=True)

"""A second tracker plugged in by one line, driven at the wire through the seam only.

Tally (``tests/tracker_fake/``) is registered the way a new source is: its setup module added
to ``connector.app.TRACKER_SOURCES``. Nothing else is edited, and every surface works for it:
workspace creation (CLI and console), its own signature check in the receiver, its event
kinds in the pipeline (approval -> drafts to the cent, withdrawal -> withdrawn), the tracker
CLI with its on-connect / on-disconnect hooks, its card on the Connections page, the shared
poll machinery (job, limiter, hold, Retry-After, poll memory), preview, OpenAPI, send-sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import responses
from sqlalchemy import func, select

from connector import db, trackers, worker
from connector.models import Connection, Delivery, Draft, DraftStatus, Job, JobState, utcnow
from tests.app_fixtures import WorkspaceHandle, app_overrides, csrf_token
from tests.helpers import map_clients_locally
from tests.tracker_fake import source as tally
from tests.tracker_fake.source import FakeTally

SAMPLE = json.loads((tally.FIXTURES / "sheet_approved__two_customers.json").read_text())
CLIENTS = {"c-1": ("Globex Corporation", "ap@globex.example"), "c-2": ("Initech", "ap@initech")}


@pytest.fixture
def app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The app with Tally's one registry line added."""
    from connector import app as app_module
    from tests import app_fixtures

    monkeypatch.setattr(
        app_module, "TRACKER_SOURCES", (*app_module.TRACKER_SOURCES, "tests.tracker_fake.setup")
    )
    monkeypatch.setattr(tally, "TALLY", FakeTally())
    application = app_module.create_app(app_overrides(database_url))
    try:
        with application.app_context():
            yield application
    finally:
        db.session.remove()
        app_fixtures._truncate_all()
        application.extensions["login_throttle"].reset()
        trackers.SOURCES.pop("tally", None)
        trackers.TRACKER_PROVIDERS.pop("tally", None)
        worker.HANDLERS.pop("tally_poll", None)


@pytest.fixture
def fake() -> FakeTally:
    return tally.TALLY


@pytest.fixture
def workspace(make_workspace: Any) -> WorkspaceHandle:
    return make_workspace(tracker_workspace_id="acct-9", tracker_source="tally")


def hook_path(ws: WorkspaceHandle) -> str:
    return f"/webhooks/tally/{ws.endpoint_token}"


def send(client: Any, ws: WorkspaceHandle, doc: dict[str, Any], token: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers[tally.TOKEN_HEADER] = token
    return client.post(hook_path(ws), data=json.dumps(doc).encode(), headers=headers)


def connect(app: Any, ws: WorkspaceHandle, key: str = "key-ok") -> Any:
    return app.test_cli_runner().invoke(
        args=["tracker", "connect", str(ws.id), "--source", "tally", "--token-stdin"],
        input=key + "\n",
    )


def deliveries() -> int:
    return db.session.scalar(select(func.count()).select_from(Delivery)) or 0


def drafts(status: str | None = None) -> list[Draft]:
    stmt = select(Draft).order_by(Draft.id)
    if status:
        stmt = stmt.where(Draft.status == status)
    return list(db.session.scalars(stmt))


def due(kind: str = "tally_poll") -> Job:
    with db.session_scope() as s:
        job = s.scalars(select(Job).where(Job.kind == kind, Job.state == JobState.PENDING)).one()
        job.next_attempt_at = utcnow() - timedelta(seconds=1)
        s.flush()
        s.expunge(job)
        return job


# --- creating a workspace for the second tracker ---------------------------------------------
def test_workspaces_create_takes_any_registered_tracker(app: Any) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=[
            "workspaces",
            "create",
            "Acme",
            "--tracker-workspace-id",
            "acct-9",
            "--tracker",
            "tally",
            "--json",
        ]
    )
    assert made.exit_code == 0, made.output
    out = json.loads(made.stdout)
    assert out["tracker"] == "tally" and "/webhooks/tally/" in out["webhook_url"]

    wrong = runner.invoke(
        args=["workspaces", "create", "B", "--tracker-workspace-id", "1", "--tracker", "nope"]
    )
    assert wrong.exit_code != 0
    assert "'nope' is not a tracker" in wrong.output and "tally" in wrong.output
    default = runner.invoke(args=["workspaces", "create", "C", "--tracker-workspace-id", "2"])
    assert default.exit_code == 0 and "webwork" in default.output  # the default stays


def test_the_console_form_offers_every_registered_tracker(app: Any, make_admin: Any) -> None:
    from connector.auth import session_user_id
    from connector.models import AdminUser, Workspace

    user_id = make_admin()
    browser = app.test_client()
    with db.new_session() as s, browser.session_transaction() as sess:
        sess["_user_id"] = session_user_id(s.get(AdminUser, user_id))
        sess["_fresh"] = True
    page = browser.get("/workspaces/new").get_data(as_text=True)
    assert '<option value="webwork" selected>WebWork</option>' in page
    assert '<option value="tally">Tally</option>' in page

    token = csrf_token(browser)
    bad = browser.post(
        "/workspaces/new",
        data={
            "csrf_token": token,
            "name": "X",
            "tracker_source": "nope",
            "tracker_workspace_id": "1",
        },
    )
    assert bad.status_code == 422
    assert "Choose one of the listed time trackers." in bad.get_data(as_text=True)
    missing = browser.post(
        "/workspaces/new",
        data={
            "csrf_token": token,
            "name": "X",
            "tracker_source": "tally",
            "tracker_workspace_id": "",
        },
    )
    assert "Enter the Tally workspace id (shown in Tally under Account)." in missing.get_data(
        as_text=True
    )
    made = browser.post(
        "/workspaces/new",
        data={
            "csrf_token": token,
            "name": "Acme",
            "tracker_source": "tally",
            "tracker_workspace_id": "acct-9",
        },
    )
    assert made.status_code == 303  # post/redirect/get: the secrets are shown by one GET
    ready = browser.get(made.headers["Location"]).get_data(as_text=True)
    # Tally keeps its own webhook token: no signing secret to paste, connecting is the step.
    assert "Nothing needs pasting into Tally" in ready and 'id="signing-secret"' not in ready
    checklist = browser.get("/workspaces/1").get_data(as_text=True)
    assert "Connect Tally" in checklist and "Show the signing secret" not in checklist
    again = browser.post(
        "/workspaces/new",
        data={
            "csrf_token": token,
            "name": "Acme 2",
            "tracker_source": "tally",
            "tracker_workspace_id": "acct-9",
        },
    )
    assert again.status_code == 422
    assert "already receives this Tally workspace" in again.get_data(as_text=True)
    sources = [w.tracker_source for w in db.session.scalars(select(Workspace))]
    assert sources == ["tally"]


# --- connecting: the CLI and the hooks -----------------------------------------------------------
def test_connect_runs_the_on_connect_hook_and_schedules_the_shared_poll(
    app: Any, workspace: WorkspaceHandle, fake: FakeTally
) -> None:
    refused = connect(app, workspace, key="key-bad")
    assert refused.exit_code != 0
    assert "Tally refused this API key" in refused.output
    assert fake.webhooks == {} and db.session.scalar(select(func.count(Connection.id))) == 0

    done = connect(app, workspace)
    assert done.exit_code == 0, done.output
    assert "Tally connected as Ada Admin." in done.output
    assert fake.webhooks == {workspace.id: f"whtok-{workspace.id}"}  # on_connect registered it
    assert due().workspace_id == workspace.id  # one pending poll of Tally's kind

    other = app.test_cli_runner().invoke(
        args=["tracker", "connect", str(workspace.id), "--source", "webwork", "--token-stdin"],
        input="x\n",
    )
    assert other.exit_code != 0 and "receives approvals from 'tally'" in other.output
    status = app.test_cli_runner().invoke(args=["tracker", "status", str(workspace.id)])
    assert "status: connected" in status.output and "connected as: Ada Admin" in status.output


def test_disconnect_runs_the_hook_and_shows_its_words_when_it_fails(
    app: Any, workspace: WorkspaceHandle, fake: FakeTally
) -> None:
    connect(app, workspace)
    fake.refuse_unregister = True
    out = app.test_cli_runner().invoke(args=["tracker", "disconnect", str(workspace.id)])
    assert out.exit_code == 0
    assert "disconnected" in out.output
    assert "warning: Delete the webhook in Tally (Settings > Webhooks)." in out.output
    assert "DELETE /webhooks" in fake.calls
    with db.new_session() as s:
        assert s.scalars(select(Job).where(Job.state == JobState.PENDING)).all() == []
        assert s.scalars(select(Connection)).one().status == "disconnected"


# --- the receiver asks the source how to verify --------------------------------------------------
def test_a_wrong_or_missing_token_is_401_and_nothing_is_stored(
    app: Any, client: Any, workspace: WorkspaceHandle
) -> None:
    connect(app, workspace)
    assert send(client, workspace, SAMPLE, None).status_code == 401
    assert send(client, workspace, SAMPLE, "whtok-wrong").status_code == 401
    assert send(client, workspace, SAMPLE, "").status_code == 401
    assert deliveries() == 0
    # Not verified by the Standard Webhooks signature another source uses either.
    from webhooks.signing import signed_headers

    body = json.dumps(SAMPLE).encode()
    res = client.post(
        hook_path(workspace), data=body, headers=signed_headers(workspace.signing_secret, body)
    )
    assert res.status_code == 401 and deliveries() == 0


def test_approval_makes_drafts_to_the_cent_and_withdrawal_withdraws_them(
    app: Any, client: Any, workspace: WorkspaceHandle
) -> None:
    connect(app, workspace)
    map_clients_locally(workspace.id, CLIENTS)
    token = f"whtok-{workspace.id}"
    res = send(client, workspace, SAMPLE, token)
    assert res.status_code == 202, res.json
    made = {d.customer_name: d for d in drafts(DraftStatus.DRAFTED)}
    assert {name: str(d.total) for name, d in made.items()} == {
        "Globex Corporation": "150.00",  # 90 min x 100.00 / 60
        "Initech": "96.58",  # 61 min x 95.00 / 60 = 96.5833.. half-up
    }
    assert send(client, workspace, SAMPLE, token).status_code == 200  # the same delivery again

    withdrawn = {**SAMPLE, "event": "sheet.withdrawn", "at": "2026-11-21T10:00:00Z"}
    assert send(client, workspace, withdrawn, token).status_code == 202
    assert drafts(DraftStatus.DRAFTED) == []
    body = client.get("/api/v1/timesheets/sheet-1/drafts", headers=workspace.auth).json
    assert body["timesheet"]["status"] == "withdrawn"


def test_unknown_kinds_are_ignored_and_another_account_is_refused(
    app: Any, client: Any, workspace: WorkspaceHandle
) -> None:
    connect(app, workspace)
    token = f"whtok-{workspace.id}"
    ignored = send(client, workspace, {**SAMPLE, "event": "sheet.submitted"}, token)
    assert ignored.status_code == 200 and ignored.json["status"] == "ignored"
    other = send(client, workspace, {**SAMPLE, "account": "acct-1"}, token)
    assert other.status_code == 422 and other.json["field"] == "/data/workspace_id"
    assert drafts() == []


def test_a_thin_approval_waits_naming_the_tracker(
    app: Any, client: Any, workspace: WorkspaceHandle
) -> None:
    connect(app, workspace)
    thin = {**SAMPLE, "sheet": {"id": "sheet-2"}}
    assert send(client, workspace, thin, f"whtok-{workspace.id}").status_code == 202
    waiting = db.session.scalars(select(Job).where(Job.kind == "process_delivery")).one()
    assert waiting.state == JobState.WAITING
    assert "Connect the Tally account" in (waiting.last_error or "")


# --- the shared poll machinery -------------------------------------------------------------------
def test_a_lost_webhook_is_found_by_the_poll_and_billed_once(
    app: Any, client: Any, workspace: WorkspaceHandle, fake: FakeTally, monkeypatch: Any
) -> None:
    from connector import ratelimit

    asked: list[str] = []

    class Recorder:
        def acquire(self, bucket: str, limits: Any) -> None:
            asked.append(bucket)

    monkeypatch.setattr(ratelimit, "shared_limiter", lambda: Recorder())
    connect(app, workspace)
    map_clients_locally(workspace.id, CLIENTS)
    fake.approved["sheet-1"] = SAMPLE["sheet"]  # approved in Tally; its webhook got lost
    assert worker.run_job(due().id) == JobState.DONE
    assert len(drafts(DraftStatus.DRAFTED)) == 2
    assert asked == [f"tally:{workspace.id}"]  # through the shared limiter
    assert due().next_attempt_at is not None  # the next poll is scheduled

    assert worker.run_job(due().id) == JobState.DONE  # nothing new
    late = send(client, workspace, SAMPLE, f"whtok-{workspace.id}")  # the webhook after all
    assert late.status_code == 202
    assert len(drafts()) == 2  # billed once

    report = app.test_cli_runner().invoke(args=["tracker", "poll", str(workspace.id)])
    assert report.exit_code == 0 and "0 new approval(s)" in report.output


def test_a_refusal_holds_the_connection_and_retry_after_delays_the_next_poll(
    app: Any, workspace: WorkspaceHandle, fake: FakeTally
) -> None:
    connect(app, workspace)
    fake.refuse_next_poll = "429"
    assert worker.run_job(due().id) == JobState.DONE
    with db.new_session() as s:
        job = s.scalars(
            select(Job).where(Job.kind == "tally_poll", Job.state == JobState.PENDING)
        ).one()
        assert job.next_attempt_at >= utcnow() + timedelta(seconds=1100)
        row = s.scalars(select(Connection)).one()
        assert (
            row.status == "connected" and row.meta["last_error"] == "Tally asked us to slow down."
        )

    fake.refuse_next_poll = "refused"
    assert worker.run_job(due().id) == JobState.DONE
    with db.new_session() as s:
        row = s.scalars(select(Connection)).one()
        assert row.status == "reconnect_needed" and row.last_error == "Tally refused the API key."
        job = s.scalars(
            select(Job).where(Job.kind == "tally_poll", Job.state == JobState.PENDING)
        ).one()
        assert job.next_attempt_at >= utcnow() + timedelta(seconds=850)
    # No recheck declared: the held connection waits for a reconnect, polling nothing.
    calls = len(fake.calls)
    assert worker.run_job(due().id) == JobState.DONE
    assert len(fake.calls) == calls


# --- the console, the API, send-sample ------------------------------------------------------------
def test_the_connections_page_shows_the_sources_card_and_its_routes_work(
    app: Any, admin_client: Any, workspace: WorkspaceHandle, fake: FakeTally
) -> None:
    page = admin_client.get(f"/workspaces/{workspace.id}/connections").get_data(as_text=True)
    assert "Tally (time tracker)" in page and 'id="tally-token"' in page
    assert "Paste a Tally API key" in page and "WebWork" not in page

    token = csrf_token(admin_client)
    res = admin_client.post(
        f"/workspaces/{workspace.id}/connections/tracker/token",
        data={"csrf_token": token, "token": "key-ok"},
        follow_redirects=True,
    )
    text = res.get_data(as_text=True)
    assert "Tally connected as Ada Admin." in text and 'id="tally-connected"' in text
    assert "webhooks registered" in text
    bad = admin_client.post(
        f"/workspaces/{workspace.id}/connections/tracker/poll",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "Polling Tally now" in bad.get_data(as_text=True)
    fake.refuse_unregister = True
    gone = admin_client.post(
        f"/workspaces/{workspace.id}/connections/tracker/disconnect",
        data={"csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Tally disconnected" in gone and "Delete the webhook in Tally" in gone


def test_preview_and_openapi_read_the_sources_contract(
    client: Any, workspace: WorkspaceHandle
) -> None:
    map_clients_locally(workspace.id, CLIENTS)
    res = client.post("/api/v1/preview", json=SAMPLE, headers=workspace.auth)
    assert res.status_code == 200, res.json
    assert sorted(d["total"] for d in res.json["drafts"]) == ["150.00", "96.58"]
    thin = client.post(
        "/api/v1/preview", json={**SAMPLE, "sheet": {"id": "s"}}, headers=workspace.auth
    )
    assert thin.status_code == 422 and thin.json["field"] == "/sheet/rows"
    doc = client.get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    assert {"$ref": "#/components/schemas/Event_tally"} in schemas["Event"]["anyOf"]
    assert "Event_tally_sheet" in schemas and "Event_webwork" in schemas


def test_send_sample_signs_with_the_sources_own_check(
    app: Any, client: Any, workspace: WorkspaceHandle
) -> None:
    connect(app, workspace)
    url = f"http://invoicer.test{hook_path(workspace)}"

    def forward(request: Any) -> tuple[int, dict[str, str], str]:
        res = client.post(request.path_url, data=request.body, headers=dict(request.headers))
        return res.status_code, {}, res.get_data(as_text=True)

    with responses.RequestsMock() as wire:
        wire.add_callback(responses.POST, url, callback=forward)
        out = app.test_cli_runner().invoke(
            args=[
                "events",
                "send-sample",
                "--url",
                url,
                "--secret-stdin",
                "--tracker-workspace-id",
                "acct-9",
            ],
            input=f"whtok-{workspace.id}\n",
        )
    assert out.exit_code == 0, out.output
    assert out.output.startswith("202 ")
    stored = db.session.scalars(select(Delivery)).one()
    assert stored.source == "tally" and stored.event_type == "sheet.approved"

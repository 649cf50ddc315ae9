"""The QuickBooks connect flow: authorize redirect with a server-side state, callback that
stores encrypted tokens, refusals that are clear 400 pages (never 500s), and disconnect."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse, urlsplit

import pytest
import responses
from sqlalchemy import select

from connector import db
from connector.models import Connection, ConnectionStatus, OAuthState, Workspace, utcnow
from tests.app_fixtures import csrf_token
from tests.providers.qbo_fixtures import CONFIG, REALM, TOKEN_URL, FakeQbo

CALLBACK = "/connections/quickbooks/callback"


@pytest.fixture
def qbo_app(app: Any) -> Any:
    app.config.update({k: v for k, v in CONFIG.items() if k != "PUBLIC_BASE_URL"})
    return app


@pytest.fixture
def restored(monkeypatch: Any) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("connector.pipeline.on_connection_restored", calls.append)
    return calls


def connection(workspace_id: int) -> Connection | None:
    with db.new_session() as s:
        return s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == "quickbooks"
            )
        ).one_or_none()


def start_connect(client: Any, workspace_id: int) -> dict[str, str]:
    response = client.get(f"/workspaces/{workspace_id}/connections/quickbooks/connect")
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://appcenter.intuit.com/connect/oauth2"
    )
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_connect_redirects_to_intuit_with_a_state(qbo_app: Any, admin_client: Any, workspace: Any):
    query = start_connect(admin_client, workspace.id)
    assert query["client_id"] == "ABtestclientid"
    assert query["response_type"] == "code"
    assert query["scope"] == "com.intuit.quickbooks.accounting"
    assert query["redirect_uri"] == "http://invoicer.test/connections/quickbooks/callback"
    assert len(query["state"]) >= 32
    with db.new_session() as s:  # kept server-side (only its hash), bound to admin and workspace
        (pending,) = s.scalars(select(OAuthState)).all()
    assert pending.provider == "quickbooks" and pending.workspace_id == workspace.id
    assert query["state"] not in pending.state_hash
    assert pending.data == {"environment": "sandbox"}
    # A second connect gets a new state.
    assert start_connect(admin_client, workspace.id)["state"] != query["state"]


def test_callback_stores_encrypted_tokens_and_switches_provider(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, restored: list[int]
):
    state = start_connect(admin_client, workspace.id)["state"]

    response = admin_client.get(
        CALLBACK, query_string={"code": "good-code", "state": state, "realmId": REALM}
    )

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/workspaces/{workspace.id}/connections")
    row = connection(workspace.id)
    assert row is not None
    assert row.status == ConnectionStatus.CONNECTED
    assert row.account_id == REALM
    assert row.environment == "sandbox"
    assert row.account_name == "Sandbox Co"
    assert "access-1" not in row.credentials_encrypted
    assert "refresh-1" not in row.credentials_encrypted
    from connector.connections.store import DbCredentialStore, secret_box

    creds = DbCredentialStore(workspace.id, "quickbooks", secret_box(qbo_app.config)).load()
    assert creds["access_token"] == "access-1"
    assert creds["refresh_token"] == "refresh-1"
    (token_call,) = [c for c in fake.rsps.calls if c.request.url == TOKEN_URL]
    form = parse_qs(token_call.request.body)
    assert form["grant_type"] == ["authorization_code"]
    assert form["code"] == ["good-code"]
    assert form["redirect_uri"] == ["http://invoicer.test/connections/quickbooks/callback"]
    with db.new_session() as s:
        assert s.get(Workspace, workspace.id).provider == "quickbooks"
    assert restored == [workspace.id]
    with db.new_session() as s:
        assert s.scalars(select(OAuthState)).all() == []  # the state is single-use
    with admin_client.session_transaction() as sess:
        assert any("connected" in m for _, m in sess.get("_flashes", []))


def test_reusing_the_state_is_refused(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, restored: list[int]
):
    state = start_connect(admin_client, workspace.id)["state"]
    args = {"code": "good-code", "state": state, "realmId": REALM}
    assert admin_client.get(CALLBACK, query_string=args).status_code == 302
    assert admin_client.get(CALLBACK, query_string=args).status_code == 400


def test_a_copy_of_the_cookie_taken_before_the_callback_cannot_replay_it(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, restored: list[int]
):
    """Issue 20 item 7: the state lived in the cookie, so restoring a copy of it replayed the
    callback and Intuit's token endpoint was called again."""
    state = start_connect(admin_client, workspace.id)["state"]
    copied = admin_client.get_cookie("session").value
    args = {"code": "good-code", "state": state, "realmId": REALM}
    assert admin_client.get(CALLBACK, query_string=args).status_code == 302

    admin_client.set_cookie("session", copied)
    replay = admin_client.get(CALLBACK, query_string=args)

    assert replay.status_code == 400
    assert b"already used" in replay.data
    assert fake.token_posts == 1
    assert restored == [workspace.id]


def test_the_state_is_bound_to_the_admin_who_started(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, make_admin: Any
):
    from connector.auth import session_user_id
    from connector.models import AdminUser

    state = start_connect(admin_client, workspace.id)["state"]
    other = qbo_app.test_client()  # another admin of the same workspace
    other_id = make_admin(workspace, email="other@example.com")
    with db.new_session() as s, other.session_transaction() as sess:
        sess["_user_id"] = session_user_id(s.get(AdminUser, other_id))
    args = {"code": "good-code", "state": state, "realmId": REALM}

    with qbo_app.app_context():  # its own ``g``: flask-login caches the signed-in admin there
        refused = other.get(CALLBACK, query_string=args)
    assert refused.status_code == 400
    assert fake.token_posts == 0
    # ... and presenting it did not burn the flow of the admin who started it.
    assert admin_client.get(CALLBACK, query_string=args).status_code == 302
    assert fake.token_posts == 1


def test_an_expired_state_is_refused(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, monkeypatch: Any
):
    from connector.oauth import state as oauth_state

    state = start_connect(admin_client, workspace.id)["state"]
    later = utcnow() + timedelta(seconds=oauth_state.STATE_MAX_AGE_SECONDS + 1)
    monkeypatch.setattr(oauth_state, "utcnow", lambda: later)
    args = {"code": "good-code", "state": state, "realmId": REALM}
    assert admin_client.get(CALLBACK, query_string=args).status_code == 400
    assert fake.token_posts == 0


def test_wrong_state_is_a_400_and_stores_nothing(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, restored: list[int]
):
    start_connect(admin_client, workspace.id)
    response = admin_client.get(
        CALLBACK, query_string={"code": "good-code", "state": "forged", "realmId": REALM}
    )
    assert response.status_code == 400
    assert b"does not belong to a connection you started" in response.data
    assert connection(workspace.id) is None
    assert fake.token_posts == 0
    assert restored == []


def test_callback_without_a_started_connect_is_a_400(
    qbo_app: Any, admin_client: Any, fake: FakeQbo
):
    response = admin_client.get(
        CALLBACK, query_string={"code": "good-code", "state": "x", "realmId": REALM}
    )
    assert response.status_code == 400
    assert fake.token_posts == 0


def test_access_denied_is_explained(qbo_app: Any, admin_client: Any, workspace: Any):
    state = start_connect(admin_client, workspace.id)["state"]
    response = admin_client.get(CALLBACK, query_string={"error": "access_denied", "state": state})
    assert response.status_code == 400
    assert b"declined access in QuickBooks" in response.data
    assert connection(workspace.id) is None


def test_refused_code_exchange_is_a_400_not_a_500(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo
):
    state = start_connect(admin_client, workspace.id)["state"]
    response = admin_client.get(
        CALLBACK, query_string={"code": "stale-code", "state": state, "realmId": REALM}
    )
    assert response.status_code == 400
    assert b"invalid_grant" in response.data
    assert connection(workspace.id) is None


def test_unconfigured_app_is_a_clear_400(app: Any, admin_client: Any, workspace: Any):
    app.config["QUICKBOOKS_CLIENT_ID"] = None
    response = admin_client.get(f"/workspaces/{workspace.id}/connections/quickbooks/connect")
    assert response.status_code == 400
    assert b"QUICKBOOKS_CLIENT_ID" in response.data
    app.config.update(CONFIG, QUICKBOOKS_ENVIRONMENT="Production")
    response = admin_client.get(f"/workspaces/{workspace.id}/connections/quickbooks/connect")
    assert response.status_code == 400
    assert b"exactly" in response.data


def test_other_workspaces_are_not_reachable(qbo_app: Any, admin_client: Any, make_workspace: Any):
    other = make_workspace(tracker_workspace_id="999")
    response = admin_client.get(f"/workspaces/{other.id}/connections/quickbooks/connect")
    assert response.status_code == 404


def test_signed_out_users_are_sent_to_login(qbo_app: Any, client: Any, workspace: Any):
    response = client.get(f"/workspaces/{workspace.id}/connections/quickbooks/connect")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login" and "appcenter.intuit.com" not in response.headers["Location"]
    assert parse_qs(location.query)["next"] == [
        f"/workspaces/{workspace.id}/connections/quickbooks/connect"
    ]


def test_reconnecting_the_same_company_keeps_cached_ids(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, restored: list[int]
):
    from connector.connections.store import DbCredentialStore, secret_box

    store = DbCredentialStore(workspace.id, "quickbooks", secret_box(qbo_app.config))
    store.connect({"refresh_token": "old"}, account_id=REALM, environment="sandbox")
    store.update_meta(service_item_id="42")
    store.mark_reconnect_needed("invalid_grant")

    state = start_connect(admin_client, workspace.id)["state"]
    admin_client.get(CALLBACK, query_string={"code": "good-code", "state": state, "realmId": REALM})

    assert store.meta()["service_item_id"] == "42"
    assert connection(workspace.id).status == ConnectionStatus.CONNECTED
    assert restored == [workspace.id]


def test_disconnect_revokes_at_intuit(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, restored: list[int]
):
    state = start_connect(admin_client, workspace.id)["state"]
    admin_client.get(CALLBACK, query_string={"code": "good-code", "state": state, "realmId": REALM})
    path = f"/workspaces/{workspace.id}/connections/quickbooks/disconnect"

    assert admin_client.post(path).status_code == 400  # CSRF is enforced
    assert fake.revoked == []
    ask = admin_client.post(path, data={"csrf_token": csrf_token(admin_client)})
    assert ask.status_code == 200 and "Disconnect QuickBooks Online?" in ask.get_data(as_text=True)
    assert fake.revoked == [] and connection(workspace.id).status == ConnectionStatus.CONNECTED

    response = admin_client.post(
        path, data={"csrf_token": csrf_token(admin_client), "confirmed": "yes"}
    )

    assert response.status_code == 302
    assert fake.revoked == ["refresh-1"]
    row = connection(workspace.id)
    assert row.status == ConnectionStatus.DISCONNECTED
    assert row.credentials_encrypted is None


def test_disconnect_when_intuit_is_down_still_disconnects_here(
    qbo_app: Any, admin_client: Any, workspace: Any, rsps: Any
):
    from connector.connections.store import DbCredentialStore, secret_box
    from tests.providers.qbo_fixtures import REVOKE_URL

    store = DbCredentialStore(workspace.id, "quickbooks", secret_box(qbo_app.config))
    store.connect({"refresh_token": "r"}, account_id=REALM, environment="sandbox")
    rsps.add(responses.POST, REVOKE_URL, status=503)
    path = f"/workspaces/{workspace.id}/connections/quickbooks/disconnect"
    response = admin_client.post(
        path, data={"csrf_token": csrf_token(admin_client), "confirmed": "yes"}
    )
    assert response.status_code == 302
    assert connection(workspace.id).status == ConnectionStatus.DISCONNECTED
    with admin_client.session_transaction() as sess:
        assert any("remove the app" in m for _, m in sess.get("_flashes", []))


def test_reconnect_from_a_hold_returns_to_the_approval(
    qbo_app: Any, admin_client: Any, workspace: Any, fake: FakeQbo, restored: list[int]
):
    back = f"/workspaces/{workspace.id}/approvals/7"
    page = admin_client.get(f"/workspaces/{workspace.id}/connections", query_string={"back": back})
    assert page.status_code == 200
    state = start_connect(admin_client, workspace.id)["state"]
    response = admin_client.get(
        CALLBACK, query_string={"code": "good-code", "state": state, "realmId": REALM}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(back)
    # Once: the next connect lands on the connections page again.
    with admin_client.session_transaction() as sess:
        assert "return_after_connect" not in sess


def test_reconnect_never_returns_off_site(qbo_app: Any, admin_client: Any, workspace: Any):
    for back in ("//evil.example/x", "https://evil.example/", f"/workspaces/{workspace.id + 1}/x"):
        admin_client.get(f"/workspaces/{workspace.id}/connections", query_string={"back": back})
        with admin_client.session_transaction() as sess:
            assert "return_after_connect" not in sess

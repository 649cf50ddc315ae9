"""Connecting Stripe: a pasted restricted key (validated before it is stored) or Connect OAuth
(state kept server-side, bound to the admin), and disconnecting (deauthorize for OAuth)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import select

from connector import db
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Connection, ConnectionStatus, Workspace, utcnow
from connector.oauth import state as oauth_state
from connector.providers.stripe import STRIPE_API_VERSION
from tests.app_fixtures import csrf_token, load_fixture

API = "https://api.stripe.test"
CONNECT = "https://connect.stripe.test"
RK = "rk_test_51TestRestrictedKeyabcd"


def fx(name: str) -> dict[str, Any]:
    return load_fixture("stripe", f"{name}.json")


@pytest.fixture(autouse=True)
def stripe_config(app: Any) -> None:
    app.config.update(
        STRIPE_API_BASE_URL=API,
        STRIPE_CONNECT_BASE_URL=CONNECT,
        STRIPE_CONNECT_CLIENT_ID="ca_TestClientId",
        STRIPE_PLATFORM_SECRET_KEY="sk_test_platformKey1234wxyz",
    )


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("connector.pipeline.on_connection_restored", calls.append)
    return calls


def flashes(client: Any) -> list[tuple[str, str]]:
    with client.session_transaction() as sess:
        return list(sess.get("_flashes", []))


def key_field_error(client: Any) -> str:
    """Why a key was refused: shown at the key field; the banner only points there."""
    found = flashes(client)
    assert ("error", "Stripe was not connected: the key field says why.") in found
    [message] = [m for c, m in found if c == "field:stripe-api-key"]
    return message


def connection(workspace_id: int) -> Connection | None:
    with db.new_session() as s:
        return s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == "stripe"
            )
        ).one_or_none()


def store_for(app: Any, workspace_id: int) -> DbCredentialStore:
    return DbCredentialStore(workspace_id, "stripe", secret_box(app.config))


def post_key(client: Any, workspace_id: int, key: str) -> Any:
    path = f"/workspaces/{workspace_id}/connections/stripe/key"
    return client.post(path, data={"api_key": key, "csrf_token": csrf_token(client, path)})


def mock_valid_key(rsps: Any) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers", json=fx("customer_list__page2"))
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__empty"))
    rsps.add(responses.GET, f"{API}/v1/account", json=fx("account__current"))


# --- restricted key ------------------------------------------------------------------------------
def test_valid_restricted_key_is_checked_then_stored_encrypted(
    app: Any, admin_client: Any, workspace: Any, rsps: Any, restored: list[int]
) -> None:
    mock_valid_key(rsps)

    response = post_key(admin_client, workspace.id, RK)

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/workspaces/{workspace.id}/connections")
    assert [urlsplit(c.request.url).path for c in rsps.calls] == [
        "/v1/customers",
        "/v1/invoices",
        "/v1/account",
    ]
    assert all(c.request.headers["Authorization"] == f"Bearer {RK}" for c in rsps.calls)
    assert rsps.calls[0].request.headers["Stripe-Version"] == STRIPE_API_VERSION
    assert "limit=1" in rsps.calls[0].request.url
    row = connection(workspace.id)
    assert row is not None and row.status == ConnectionStatus.CONNECTED
    assert row.environment == "test" and row.account_id == "acct_1Test"
    assert RK not in row.credentials_encrypted  # encrypted at rest
    assert row.meta["masked_key"] == "rk_test_…abcd" and row.meta["key_type"] == "restricted"
    assert store_for(app, workspace.id).load() == {"method": "api_key", "api_key": RK}
    with db.new_session() as s:
        assert s.get(Workspace, workspace.id).provider == "stripe"
    assert restored == [workspace.id]
    assert ("success", "Stripe connected in test mode.") in flashes(admin_client)


def test_live_key_without_account_access_is_still_accepted(
    admin_client: Any, workspace: Any, rsps: Any, restored: list[int]
) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers", json=fx("customer_list__page2"))
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__empty"))
    rsps.add(responses.GET, f"{API}/v1/account", json=fx("error__permission"), status=403)
    post_key(admin_client, workspace.id, "rk_live_51LiveRestrictedKeywxyz")
    row = connection(workspace.id)
    assert row.environment == "live" and row.account_id is None


def test_bad_key_stores_nothing_and_says_why(
    admin_client: Any, workspace: Any, rsps: Any, restored: list[int]
) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers", json=fx("error__invalid_api_key"), status=401)
    response = post_key(admin_client, workspace.id, RK)
    assert response.status_code == 302
    assert connection(workspace.id) is None
    assert restored == []
    assert "Stripe did not accept this key" in key_field_error(admin_client)


def test_key_without_invoice_permission_is_refused(
    admin_client: Any, workspace: Any, rsps: Any, restored: list[int]
) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers", json=fx("customer_list__page2"))
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("error__permission"), status=403)
    post_key(admin_client, workspace.id, RK)
    assert connection(workspace.id) is None
    message = key_field_error(admin_client)
    assert "Customers: Write and Invoices: Write" in message and "rak_invoice_write" in message


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("pk_test_51Publishable1234", "publishable"),
        ("not a key", "does not look like a Stripe key"),
        ("", "does not look like a Stripe key"),
    ],
)
def test_malformed_keys_are_refused_without_calling_stripe(
    admin_client: Any, workspace: Any, rsps: Any, key: str, words: str
) -> None:
    post_key(admin_client, workspace.id, key)
    assert len(rsps.calls) == 0
    assert connection(workspace.id) is None
    assert words in key_field_error(admin_client)


def test_full_secret_key_works_with_a_warning(
    admin_client: Any, workspace: Any, rsps: Any, restored: list[int]
) -> None:
    mock_valid_key(rsps)
    post_key(admin_client, workspace.id, "sk_test_51FullSecretKey1234")
    assert connection(workspace.id).meta["key_type"] == "secret"
    assert any(c == "warning" and "restricted key" in m for c, m in flashes(admin_client))


def test_saving_a_key_needs_the_csrf_token(admin_client: Any, workspace: Any, rsps: Any) -> None:
    response = admin_client.post(
        f"/workspaces/{workspace.id}/connections/stripe/key", data={"api_key": RK}
    )
    assert response.status_code == 400
    assert len(rsps.calls) == 0 and connection(workspace.id) is None


def test_another_workspaces_admin_gets_404(
    admin_client: Any, make_workspace: Any, rsps: Any
) -> None:
    other = make_workspace(tracker_workspace_id="9999")
    response = post_key(admin_client, other.id, RK)
    assert response.status_code == 404
    assert len(rsps.calls) == 0 and connection(other.id) is None


def test_reconnecting_keeps_half_created_drafts(
    app: Any, admin_client: Any, workspace: Any, rsps: Any, restored: list[int]
) -> None:
    store = store_for(app, workspace.id)
    store.connect(
        {"method": "api_key", "api_key": RK},
        account_id="acct_1Test",
        environment="test",
        meta={
            "pending_drafts": {"ti-x": {"invoice": "in_1", "customer": "cus_A"}},
            "customer_currencies": {"cus_A": "usd"},
        },
    )
    store.mark_reconnect_needed("revoked")
    mock_valid_key(rsps)
    post_key(admin_client, workspace.id, RK)
    meta = store.meta()
    assert meta["pending_drafts"] == {"ti-x": {"invoice": "in_1", "customer": "cus_A"}}
    assert meta["customer_currencies"] == {"cus_A": "usd"}  # same account: cache still valid
    assert store.connection().status == ConnectionStatus.CONNECTED


# --- Connect OAuth -------------------------------------------------------------------------------
def start_oauth(client: Any, workspace_id: int) -> str:
    response = client.get(f"/workspaces/{workspace_id}/connections/stripe/connect")
    assert response.status_code == 302
    url = urlsplit(response.headers["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{CONNECT}/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == "ca_TestClientId"
    assert query["scope"] == "read_write"
    assert query["redirect_uri"] == "http://invoicer.test/connections/stripe/callback"
    assert len(query["state"]) >= 32
    return query["state"]


def test_oauth_round_trip_stores_the_account_not_the_tokens(
    app: Any, admin_client: Any, workspace: Any, rsps: Any, restored: list[int]
) -> None:
    state = start_oauth(admin_client, workspace.id)
    rsps.add(responses.POST, f"{CONNECT}/oauth/token", json=fx("oauth_token__test"))

    response = admin_client.get(f"/connections/stripe/callback?code=ac_123&state={state}")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/workspaces/{workspace.id}/connections")
    (token_call,) = rsps.calls
    assert token_call.request.headers["Authorization"] == "Bearer sk_test_platformKey1234wxyz"
    body = parse_qs(token_call.request.body)
    assert body["grant_type"] == ["authorization_code"] and body["code"] == ["ac_123"]
    row = connection(workspace.id)
    assert row.account_id == "acct_1Conn" and row.environment == "test"
    assert "acct_1Conn" not in row.credentials_encrypted
    credentials = store_for(app, workspace.id).load()
    assert credentials == {"method": "oauth", "stripe_user_id": "acct_1Conn"}
    assert restored == [workspace.id]


def test_oauth_callback_with_a_wrong_state_is_refused(
    admin_client: Any, workspace: Any, rsps: Any
) -> None:
    start_oauth(admin_client, workspace.id)
    response = admin_client.get("/connections/stripe/callback?code=ac_123&state=forged")
    assert response.status_code == 400
    assert len(rsps.calls) == 0 and connection(workspace.id) is None


def test_oauth_callback_without_a_started_flow_is_refused(
    admin_client: Any, workspace: Any, rsps: Any
) -> None:
    response = admin_client.get("/connections/stripe/callback?code=ac_123&state=anything")
    assert response.status_code == 400
    assert len(rsps.calls) == 0


def test_oauth_state_expires_like_the_other_connect_flows(
    admin_client: Any, workspace: Any, rsps: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Stripe consent screen left open past STATE_MAX_AGE_SECONDS must start again, as
    QuickBooks' and WebWork's do (one shared state helper)."""
    state = start_oauth(admin_client, workspace.id)
    later = utcnow() + timedelta(seconds=oauth_state.STATE_MAX_AGE_SECONDS + 1)
    monkeypatch.setattr(oauth_state, "utcnow", lambda: later)
    response = admin_client.get(f"/connections/stripe/callback?code=ac_123&state={state}")
    assert response.status_code == 400
    assert len(rsps.calls) == 0 and connection(workspace.id) is None


def test_oauth_state_is_single_use(admin_client: Any, workspace: Any, rsps: Any) -> None:
    state = start_oauth(admin_client, workspace.id)
    rsps.add(responses.POST, f"{CONNECT}/oauth/token", json=fx("oauth_token__test"))
    admin_client.get(f"/connections/stripe/callback?code=ac_123&state={state}")
    replay = admin_client.get(f"/connections/stripe/callback?code=ac_123&state={state}")
    assert replay.status_code == 400
    assert len(rsps.calls) == 1


def test_a_copy_of_the_cookie_taken_before_the_callback_cannot_replay_it(
    admin_client: Any, workspace: Any, rsps: Any
) -> None:
    """Issue 20 item 7: with the state in the cookie, a copy taken before the callback replayed
    it and Stripe's token endpoint was called a second time."""
    state = start_oauth(admin_client, workspace.id)
    copied = admin_client.get_cookie("session").value
    rsps.add(responses.POST, f"{CONNECT}/oauth/token", json=fx("oauth_token__test"))
    assert (
        admin_client.get(f"/connections/stripe/callback?code=ac_123&state={state}").status_code
        == 302
    )

    admin_client.set_cookie("session", copied)
    replay = admin_client.get(f"/connections/stripe/callback?code=ac_123&state={state}")

    assert replay.status_code == 400
    assert len(rsps.calls) == 1


def test_oauth_denied_or_expired_code_stores_nothing(
    admin_client: Any, workspace: Any, rsps: Any
) -> None:
    state = start_oauth(admin_client, workspace.id)
    denied = admin_client.get(
        f"/connections/stripe/callback?error=access_denied"
        f"&error_description=The+user+denied+your+request&state={state}"
    )
    assert denied.status_code == 400
    assert "You declined access in Stripe" in denied.get_data(as_text=True)
    assert "The user denied your request" in denied.get_data(as_text=True)

    state = start_oauth(admin_client, workspace.id)
    rsps.add(
        responses.POST, f"{CONNECT}/oauth/token", json=fx("oauth_token__invalid_grant"), status=400
    )
    refused = admin_client.get(f"/connections/stripe/callback?code=ac_old&state={state}")
    assert refused.status_code == 400
    assert connection(workspace.id) is None
    assert "Authorization code does not exist" in refused.get_data(as_text=True)


def test_oauth_not_configured(app: Any, admin_client: Any, workspace: Any) -> None:
    app.config["STRIPE_CONNECT_CLIENT_ID"] = None
    response = admin_client.get(f"/workspaces/{workspace.id}/connections/stripe/connect")
    text = response.get_data(as_text=True)
    # A styled page in plain words naming what turns it on, never a bare 400.
    assert response.status_code == 400 and "<html" in text
    assert "Stripe Connect is not set up on this server" in text
    assert "<code>STRIPE_CONNECT_CLIENT_ID</code>" in text
    assert "restricted key" in text


# --- disconnect ----------------------------------------------------------------------------------
def post_disconnect(client: Any, workspace_id: int) -> Any:
    path = f"/workspaces/{workspace_id}/connections/stripe/disconnect"
    return client.post(path, data={"csrf_token": csrf_token(client, path), "confirmed": "yes"})


@pytest.mark.parametrize(
    ("fixture", "status"),
    [("oauth_deauthorize__ok", 200), ("oauth_deauthorize__invalid_client", 400)],
)
def test_disconnect_oauth_deauthorizes(
    app: Any, admin_client: Any, workspace: Any, rsps: Any, fixture: str, status: int
) -> None:
    store_for(app, workspace.id).connect(
        {"method": "oauth", "stripe_user_id": "acct_1Conn"},
        account_id="acct_1Conn",
        environment="test",
    )
    rsps.add(responses.POST, f"{CONNECT}/oauth/deauthorize", json=fx(fixture), status=status)

    response = post_disconnect(admin_client, workspace.id)

    assert response.status_code == 302
    (call,) = rsps.calls
    assert call.request.headers["Authorization"] == "Bearer sk_test_platformKey1234wxyz"
    body = parse_qs(call.request.body)
    assert body == {"client_id": ["ca_TestClientId"], "stripe_user_id": ["acct_1Conn"]}
    row = connection(workspace.id)
    assert row.status == ConnectionStatus.DISCONNECTED and row.credentials_encrypted is None
    assert not any(c == "warning" for c, _ in flashes(admin_client))


def test_disconnect_key_just_forgets_it(
    app: Any, admin_client: Any, workspace: Any, rsps: Any
) -> None:
    store_for(app, workspace.id).connect(
        {"method": "api_key", "api_key": RK}, account_id=None, environment="test"
    )
    post_disconnect(admin_client, workspace.id)
    assert len(rsps.calls) == 0
    row = connection(workspace.id)
    assert row.status == ConnectionStatus.DISCONNECTED and row.credentials_encrypted is None
    assert store_for(app, workspace.id).load() == {}

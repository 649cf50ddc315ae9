"""QuickBooks token lifecycle: refresh before expiry, rotation stored before use, one refresher
across workers, 401 mid-run, and invalid_grant / revoked app -> ReconnectNeeded (jobs wait)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import responses

from connector.models import Connection, ConnectionStatus
from connector.providers import quickbooks
from connector.providers.base import ReconnectNeeded, RetryLater
from tests.providers.qbo_fixtures import (
    CONFIG,
    FAULT_401,
    TOKEN_URL,
    FakeQbo,
    NoLimiter,
    connect_store,
)


def connection_row(workspace_id: int) -> Connection:
    from sqlalchemy import select

    from connector import db

    with db.new_session() as s:
        return s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == "quickbooks"
            )
        ).one()


def bearer(call: Any) -> str:
    return call.request.headers["Authorization"].removeprefix("Bearer ")


def test_fresh_token_is_used_without_refreshing(app: Any, workspace: Any, fake: FakeQbo):
    store = connect_store(workspace.id, app)
    provider = quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())
    provider.get_customer("1")
    assert fake.token_posts == 0


def test_refresh_near_expiry_stores_rotated_token_before_using_it(
    app: Any, workspace: Any, fake: FakeQbo
):
    store = connect_store(workspace.id, app, expires_in=120)  # < 5 min left
    saved_when: list[tuple[str, int]] = []
    real_save = store.save

    def spy_save(credentials: dict[str, Any]) -> None:
        # How many API calls had been made when the rotated token became durable?
        saved_when.append((credentials["refresh_token"], len(fake.calls("GET", "/v3/"))))
        real_save(credentials)

    store.save = spy_save  # type: ignore[method-assign]
    provider = quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())

    assert provider.get_customer("1") is not None

    assert fake.token_posts == 1
    assert saved_when == [("refresh-2", 0)]  # saved before any API call used the new token
    creds = store.load()
    assert creds["refresh_token"] == "refresh-2"
    assert creds["access_token"] == "access-2"
    assert creds["expires_at"] > time.time() + 3000
    assert bearer(fake.calls("GET", "/customer/1")[0]) == "access-2"
    (token_call,) = [c for c in fake.rsps.calls if c.request.url == TOKEN_URL]
    assert "grant_type=refresh_token" in token_call.request.body
    assert "refresh_token=refresh-1" in token_call.request.body
    assert token_call.request.headers["Authorization"].startswith("Basic ")


def test_two_workers_refreshing_at_once_post_to_intuit_only_once(
    app: Any, workspace: Any, fake: FakeQbo
):
    connect_store(workspace.id, app, expires_in=60)
    fake.token_delay = 0.3  # the first refresher is still waiting for Intuit when the second comes
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        with app.app_context():
            from connector.connections.store import DbCredentialStore, secret_box

            store = DbCredentialStore(workspace.id, "quickbooks", secret_box(app.config))
            provider = quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())
            barrier.wait()
            try:
                results[name] = provider.get_customer("1")
            except Exception as exc:  # surfaced by the assertion below
                results[name] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert fake.token_posts == 1, results
    assert all(getattr(r, "id", None) == "1" for r in results.values()), results
    assert {bearer(c) for c in fake.calls("GET", "/customer/1")} == {"access-2"}
    from connector.connections.store import DbCredentialStore, secret_box

    store = DbCredentialStore(workspace.id, "quickbooks", secret_box(app.config))
    assert store.load()["refresh_token"] == "refresh-2"


def test_invalid_grant_marks_the_connection_and_jobs_wait(app: Any, workspace: Any, fake: FakeQbo):
    store = connect_store(workspace.id, app, expires_in=0, refresh_token="refresh-revoked")
    provider = quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())

    with pytest.raises(ReconnectNeeded, match="reconnect"):
        provider.get_customer("1")

    row = connection_row(workspace.id)
    assert row.status == ConnectionStatus.RECONNECT_NEEDED
    assert "invalid_grant" in (row.last_error or "")
    assert not fake.calls("GET", "/customer/1")


def test_token_endpoint_outage_is_transient(app: Any, workspace: Any, fake: FakeQbo, rsps: Any):
    store = connect_store(workspace.id, app, expires_in=0)
    rsps.replace(responses.POST, TOKEN_URL, status=503, body="<html>down</html>")
    provider = quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())
    with pytest.raises(RetryLater):
        provider.get_customer("1")
    assert connection_row(workspace.id).status == ConnectionStatus.CONNECTED
    assert store.load()["refresh_token"] == "refresh-1"


def test_401_mid_run_refreshes_once_and_retries(app: Any, workspace: Any, fake: FakeQbo):
    store = connect_store(workspace.id, app)
    provider = quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())
    assert provider.get_customer("1") is not None
    fake.valid_tokens = set()  # Intuit expired the access token early (it does)
    fake.refresh_tokens = {"refresh-1"}

    customer = provider.get_customer("1")

    assert customer is not None and customer.id == "1"
    calls = fake.calls("GET", "/customer/1")
    assert [bearer(c) for c in calls] == ["access-1", "access-1", "access-2"]
    assert [c.response.status_code for c in calls] == [200, 401, 200]
    assert fake.token_posts == 1
    assert store.load()["refresh_token"] == "refresh-2"


def test_second_401_after_refresh_needs_reconnect(app: Any, workspace: Any, fake: FakeQbo):
    store = connect_store(workspace.id, app)
    provider = quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())
    import json

    four_oh_one = (401, {"Content-Type": "application/json"}, json.dumps(FAULT_401))
    fake.inject("GET", "customer/1", lambda r: four_oh_one)
    fake.inject("GET", "customer/1", lambda r: four_oh_one)  # the app was disconnected

    with pytest.raises(ReconnectNeeded):
        provider.get_customer("1")

    assert fake.token_posts == 1
    row = connection_row(workspace.id)
    assert row.status == ConnectionStatus.RECONNECT_NEEDED
    assert row.last_error


def test_not_connected_or_misconfigured_waits(app: Any, workspace: Any):
    from connector.connections.store import DbCredentialStore, secret_box

    store = DbCredentialStore(workspace.id, "quickbooks", secret_box(app.config))
    with pytest.raises(ReconnectNeeded):
        quickbooks.create(workspace.id, store, CONFIG, limiter=NoLimiter())
    store = connect_store(workspace.id, app)
    with pytest.raises(ReconnectNeeded, match="exactly 'sandbox' or 'production'"):
        quickbooks.create(
            workspace.id, store, {**CONFIG, "QUICKBOOKS_ENVIRONMENT": "Sandbox"}, limiter=None
        )


def test_environment_must_be_exact() -> None:
    from connector.providers.quickbooks import oauth

    for bad in ("Sandbox", "prod", "", "PRODUCTION"):
        with pytest.raises(oauth.QuickBooksConfigError):
            oauth.settings_from_config({**CONFIG, "QUICKBOOKS_ENVIRONMENT": bad or "x"})
    prod = oauth.settings_from_config({**CONFIG, "QUICKBOOKS_ENVIRONMENT": "production"})
    assert prod.api_base_url == "https://quickbooks.api.intuit.com"
    assert prod.app_base_url == "https://app.qbo.intuit.com"
    assert prod.timeout == (5.0, 60.0)

"""Every call at the wire: the tenant header, Idempotency-Key on writes, 30-minute tokens that
rotate (stored before use, refreshed once mid-run), and faults classified: 429 pauses the
organisation for its Retry-After, 5xx and timeouts after a write leave the outcome unknown, a
revoked grant or an organisation disconnected in Xero asks for a reconnect."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from connector import db, ratelimit
from connector.models import Connection, ConnectionStatus
from connector.providers.base import ReconnectNeeded, Rejected, RetryLater, Throttled
from tests.providers.xero.fake_xero import FakeXero


def connection(workspace_id: int) -> Connection:
    with db.new_session() as s:
        return s.scalars(select(Connection).where(Connection.workspace_id == workspace_id)).one()


def test_every_call_names_the_organisation_and_every_write_has_an_idempotency_key(
    provider: Any, fake: FakeXero
):
    contact = fake.add_contact("Globex Corporation", currency="USD")
    provider.get_customer(contact)
    from connector.providers.base import NewCustomer

    provider.create_customer(NewCustomer("Initech", currency="USD"))
    for method, _path, headers in fake.calls:
        assert headers["xero-tenant-id"] == fake.tenant
        assert headers["authorization"].startswith("Bearer xat-")
        assert ("idempotency-key" in headers) == (method != "GET")


def test_an_expired_access_token_is_refreshed_once_and_the_call_sent_again(
    provider: Any, fake: FakeXero, connected: Any
):
    contact = fake.add_contact("Globex Corporation", currency="USD")
    before = connected.load()
    fake.expire_access_tokens()  # 30 minutes passed mid-run; our clock does not know yet

    assert provider.get_customer(contact).name == "Globex Corporation"

    after = connected.load()
    assert fake.refreshes == 1
    assert after["refresh_token"] != before["refresh_token"]  # rotated, and stored
    assert after["refresh_token"] in fake.refresh  # the stored one is the live one


def test_a_token_near_its_end_is_refreshed_before_the_call(
    provider: Any, fake: FakeXero, connected: Any
):
    creds = connected.load()
    connected.save({**creds, "expires_at": time.time() + 30})
    provider.client._credentials = None
    provider.organisation()
    assert fake.refreshes == 1
    assert connected.load()["expires_at"] > time.time() + 1000


def test_a_revoked_refresh_token_asks_for_a_reconnect(
    provider: Any, fake: FakeXero, workspace: Any
):
    fake.expire_access_tokens()
    fake.revoke_refresh_tokens()
    with pytest.raises(ReconnectNeeded, match=r"must reconnect.*Nothing is lost"):
        provider.organisation()
    row = connection(workspace.id)
    assert row.status == ConnectionStatus.RECONNECT_NEEDED
    assert "invalid_grant" in (row.last_error or "")


def test_an_organisation_disconnected_in_xero_asks_for_a_reconnect(
    provider: Any, fake: FakeXero, workspace: Any
):
    fake.disconnect_org()
    with pytest.raises(ReconnectNeeded, match="Connected apps"):
        provider.organisation()
    assert connection(workspace.id).status == ConnectionStatus.RECONNECT_NEEDED


def test_a_429_pauses_the_organisation_for_every_worker_for_its_retry_after(
    provider: Any, fake: FakeXero
):
    fake.fail_next(
        "GET", "Organisation", (429, {"Retry-After": "42", "X-Rate-Limit-Problem": "minute"}, "")
    )
    with pytest.raises(Throttled) as caught:
        provider.organisation()
    assert caught.value.retry_after == 42
    assert "minute limit" in caught.value.message
    limiter = ratelimit.shared_limiter()
    assert limiter.paused_until(provider.client.bucket) > time.time() + 35
    calls = len(fake.calls)
    # Another worker's call to the same organisation waits (refused, rescheduled), unsent.
    with pytest.raises(Throttled):
        provider.organisation()
    assert len(fake.calls) == calls


def test_a_daily_limit_429_pauses_until_xero_says(provider: Any, fake: FakeXero):
    fake.fail_next(
        "GET", "Currencies", (429, {"Retry-After": "3600", "X-Rate-Limit-Problem": "day"}, "")
    )
    with pytest.raises(Throttled, match="day limit") as caught:
        provider.currencies()
    assert caught.value.retry_after == 3600


def test_a_5xx_on_a_read_is_retryable_and_on_a_write_leaves_the_outcome_unknown(
    provider: Any, fake: FakeXero
):
    fake.fail_next("GET", "Organisation", 503)
    with pytest.raises(RetryLater) as read:
        provider.organisation()
    assert not read.value.outcome_unknown
    fake.fail_next("PUT", "Contacts", 500)
    from connector.providers.base import NewCustomer

    with pytest.raises(RetryLater) as write:
        provider.create_customer(NewCustomer("Initech"))
    assert write.value.outcome_unknown


def test_a_timeout_on_a_write_leaves_the_outcome_unknown(provider: Any, fake: FakeXero):
    from connector.providers.base import NewCustomer

    fake.fail_next("PUT", "Contacts", "timeout-after-commit")
    with pytest.raises(RetryLater) as caught:
        provider.create_customer(NewCustomer("Initech"))
    assert caught.value.outcome_unknown
    # Sent again with the same key, Xero answers with the first result: still one contact.
    again = provider.create_customer(NewCustomer("Initech"))
    assert [c["Name"] for c in fake.contacts.values()] == ["Initech"]
    assert again.name == "Initech"


def test_a_validation_error_is_told_in_plain_words(provider: Any, fake: FakeXero):

    fake.add_contact("Initech")
    with pytest.raises(Rejected) as caught:
        provider.client.request(
            "PUT",
            "Contacts",
            body={"Contacts": [{"Name": "Initech"}]},
            idempotency_key="tsi:test:contact",
        )
    assert caught.value.message.startswith("Xero refused it: The contact name Initech is already")


def test_no_more_than_five_calls_are_in_flight_per_organisation(app: Any):
    """The concurrency slots are shared by every process (Redis or the database)."""
    limiter = ratelimit.shared_limiter()
    limiter.max_wait = 0.2
    bucket = f"xero:slots-test-{time.time_ns()}"
    from contextlib import ExitStack

    try:
        with ExitStack() as held:
            for _ in range(5):
                held.enter_context(limiter.concurrent(bucket, 5))
            with pytest.raises(Throttled, match="in flight"), limiter.concurrent(bucket, 5):
                pass
        with limiter.concurrent(bucket, 5):  # released: a slot is free again
            pass
    finally:
        limiter.max_wait = ratelimit.DEFAULT_MAX_WAIT_SECONDS


def test_a_daily_budget_allows_a_burst_then_spaces_calls():
    """(max, per, burst): 3 leave at once, the 4th waits for the budget to refill."""
    limits = ((3, 300.0, 3),)
    tats: dict[str, float] = {}
    waits = []
    for _ in range(4):
        decision = ratelimit.decide(tats, 0.0, 1000.0, limits)
        waits.append(decision.wait)
        tats = decision.tats
    assert waits == [0.0, 0.0, 0.0, 100.0]
    # Without a burst the minute limit spaces calls evenly, as before.
    even = ratelimit.decide({"60": 1001.0}, 0.0, 1000.0, ((60, 60.0),))
    assert even.wait == 1.0

"""The Clockify client at the wire: key header, pagination, retries, errors, webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from webhooks.clockify.client import (
    REVOKED_MESSAGE,
    ClockifyClient,
    ClockifySettings,
    Forbidden,
    NotFound,
    ReconnectRequired,
    Unavailable,
    settings_from_config,
)
from webhooks.clockify.tests.conftest import ADA, WEBSITE, ada_week
from webhooks.clockify.tests.fake import (
    API,
    DROPPED,
    TIMEOUT,
    WORKSPACE,
    FakeClockify,
    NoLimiter,
    status,
)

SETTINGS = ClockifySettings(api_base_url=API)


def make(fake: FakeClockify, limiter: NoLimiter, sleeps: list[float], **kw: Any) -> ClockifyClient:
    key = kw.pop("key", None) or fake.add_key()
    return ClockifyClient(
        SETTINGS, key, workspace_id=WORKSPACE, limiter=limiter, sleep=sleeps.append, **kw
    )


def test_settings_default_to_clockifys_public_hosts_and_read_regional_ones() -> None:
    assert ClockifySettings().api_base_url == "https://api.clockify.me/api/v1"
    assert ClockifySettings().reports_base_url == "https://reports.api.clockify.me/v1"
    regional = settings_from_config(
        {
            "CLOCKIFY_API_BASE_URL": "https://euc1.clockify.me/api/v1/",
            "CLOCKIFY_REPORTS_BASE_URL": "https://euc1.clockify.me/report/v1",
        }
    )
    assert regional.api_base_url == "https://euc1.clockify.me/api/v1"
    assert regional.reports_base_url == "https://euc1.clockify.me/report/v1"


def test_key_in_header_per_workspace_limiter_and_no_key_in_repr(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    key = clockify.add_key()
    client = make(clockify, limiter, sleeps, key=key)
    assert client.workspace()["name"] == "Acme Clockify"
    assert limiter.calls == [(f"clockify:{WORKSPACE}", ((10, 1.0),))]
    assert key not in repr(client)


def test_pages_until_last_page_header(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    clockify.page_size_cap = 2  # Clockify caps page-size: the header, not a short page, ends it
    for i in range(5):
        clockify.add_project(f"pr-{i}", f"Project {i}")
    names = [p["name"] for p in make(clockify, limiter, sleeps).projects()]
    assert len(names) == 8
    assert [q["page"] for q in clockify.api_calls("/projects")] == [["1"], ["2"], ["3"], ["4"]]


def test_approved_requests_list_their_entries(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    request_id = ada_week(clockify)
    clockify.approve(request_id)
    pages = list(make(clockify, limiter, sleeps).approval_request_pages())
    [item] = pages[0]
    assert item["approvalRequest"]["id"] == request_id
    assert {e["project"]["id"] for e in item["entries"] if e["project"]} >= {WEBSITE}
    [query] = clockify.api_calls("/approval-requests")
    assert query["status"] == ["APPROVED"] and query["sort-column"] == ["UPDATED_AT"]


def test_user_time_entries_are_hydrated_in_the_range(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    ada_week(clockify)
    entries = make(clockify, limiter, sleeps).user_time_entries(
        ADA[0], datetime(2026, 11, 1, 23, tzinfo=UTC), datetime(2026, 11, 8, 23, tzinfo=UTC)
    )
    assert len(entries) == 4
    [query] = clockify.api_calls("/time-entries")
    assert query["hydrated"] == ["true"] and query["start"] == ["2026-11-01T23:00:00.000Z"]


def test_429_honours_retry_after_and_pauses_the_workspace(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    clockify.fail_next(status(429, {"Retry-After": "7"}))
    make(clockify, limiter, sleeps).workspace()
    assert limiter.pauses == [(f"clockify:{WORKSPACE}", 7.0)]
    assert sleeps == [7.0]


def test_long_retry_after_is_unavailable_not_a_sleep(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    clockify.fail_next(status(429, {"Retry-After": "600"}))
    with pytest.raises(Unavailable) as caught:
        make(clockify, limiter, sleeps).workspace()
    assert caught.value.retry_after == 600.0 and sleeps == []


@pytest.mark.parametrize("fault", [status(502), status(503), TIMEOUT, DROPPED])
def test_5xx_timeouts_and_dropped_connections_are_retried(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float], fault: Any
) -> None:
    clockify.fail_next(fault, fault)
    assert make(clockify, limiter, sleeps).workspace()["id"] == WORKSPACE
    assert len(sleeps) == 2


def test_persistent_5xx_ends_as_unavailable(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    clockify.fail_next(*[status(500)] * 5)
    with pytest.raises(Unavailable, match="server error"):
        make(clockify, limiter, sleeps).workspace()


def test_one_401_is_asked_again_before_believing_it(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    clockify.fail_next(status(401))
    assert make(clockify, limiter, sleeps).workspace()["id"] == WORKSPACE


def test_revoked_key_is_reconnect_required(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    key = clockify.add_key()
    clockify.revoke(key)
    with pytest.raises(ReconnectRequired) as caught:
        make(clockify, limiter, sleeps, key=key).workspace()
    assert caught.value.message == REVOKED_MESSAGE
    assert len(clockify.calls) == 2  # asked once more, then believed


def test_403_and_unknown_workspace(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    clockify.fail_next(status(403))
    with pytest.raises(Forbidden, match="Owner or Admin"):
        make(clockify, limiter, sleeps).projects()
    other = ClockifyClient(
        SETTINGS, clockify.add_key(), workspace_id="elsewhere", limiter=limiter, sleep=sleeps.append
    )
    with pytest.raises(NotFound, match="not a member"):
        other.workspace()


def test_webhooks_are_created_listed_and_deleted(
    clockify: FakeClockify, limiter: NoLimiter, sleeps: list[float]
) -> None:
    client = make(clockify, limiter, sleeps)
    hook = client.create_webhook("https://invoicer.example/webhooks/clockify/abc", "Invoicer")
    assert hook["authToken"] and hook["webhookEvent"] == "APPROVAL_REQUEST_STATUS_UPDATED"
    assert hook["triggerSourceType"] == "WORKSPACE_ID"
    assert [w["id"] for w in client.webhooks()] == [hook["id"]]
    client.delete_webhook(hook["id"])
    client.delete_webhook(hook["id"])  # already gone: not an error
    assert client.webhooks() == []

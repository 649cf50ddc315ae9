"""The WebWork API V2 client at the wire: envelope, pagination, encoding, retries, errors."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import requests

from webhooks.webwork.client import (
    FORBIDDEN_MESSAGE,
    Forbidden,
    ReconnectRequired,
    StaticToken,
    TrackerError,
    Unavailable,
    WebWorkClient,
    WebWorkSettings,
    path_segment,
    user_key_for_token,
)
from webhooks.webwork.tests.conftest import ADA
from webhooks.webwork.tests.fake import API, DROPPED, TIMEOUT, FakeWebWork, NoLimiter, jwt, status

SETTINGS = WebWorkSettings(api_base_url=API)


def make_client(fake: FakeWebWork, token: str, limiter: NoLimiter, sleeps: list[float], **kw: Any):
    return WebWorkClient(
        SETTINGS,
        StaticToken(token),
        user_key=user_key_for_token(token),
        limiter=limiter,
        sleep=sleeps.append,
        **kw,
    )


def pages(client: WebWorkClient) -> list[list[str]]:
    return [
        [t["id"] for t in page.items]
        for page in client.timesheet_pages(
            "4242", date_from=date(2026, 1, 1), date_to=date(2026, 12, 31)
        )
    ]


@pytest.mark.parametrize("in_meta", [False, True])
def test_pagination_top_level_or_under_meta_and_per_page_100(
    webwork: FakeWebWork, limiter: NoLimiter, in_meta: bool
) -> None:
    token = webwork.add_token()
    webwork.pagination_in_meta = in_meta
    for i in range(250):
        webwork.add_timesheet(f"ts-{i:03d}", ADA, "2026-11-02", "2026-11-08", {})
    got = pages(make_client(webwork, token, limiter, []))
    assert [len(p) for p in got] == [100, 100, 50]
    assert [ts for page in got for ts in page] == [f"ts-{i:03d}" for i in range(250)]
    assert {q["per_page"][0] for q in webwork.api_calls("timesheets")} == {"100"}
    assert webwork.api_calls("timesheets")[0]["workspace_id"] == ["4242"]


def test_ids_with_plus_slash_and_equals_are_percent_encoded_and_kept_whole(
    webwork: FakeWebWork, limiter: NoLimiter
) -> None:
    token = webwork.add_token()
    ts_id = "gAAAAB+x/Y9==" + "z" * 150
    webwork.add_timesheet(ts_id, ADA, "2026-11-02", "2026-11-08", {})
    seen_urls: list[str] = []
    webwork.on_call = lambda path, query: None
    client = make_client(webwork, token, limiter, [])
    original = client.session.request

    def spy(method: str, url: str, **kw: Any) -> Any:
        response = original(method, url, **kw)
        seen_urls.append(response.request.url)
        return response

    client.session.request = spy  # type: ignore[method-assign]
    found = client.get_timesheet("4242", ts_id)
    assert found is not None and found["id"] == ts_id
    assert "id=gAAAAB%2Bx%2FY9%3D%3D" + "z" * 150 in seen_urls[0]
    assert path_segment("a+b/c=") == "a%2Bb%2Fc%3D"


def test_429_storm_honours_retry_after_then_gives_up_classified(
    webwork: FakeWebWork, limiter: NoLimiter
) -> None:
    token = webwork.add_token()
    waits: list[float] = []
    webwork.fail_next(status(429, {"Retry-After": "7"}), status(429, {"Retry-After": "3"}))
    client = make_client(webwork, token, limiter, waits)
    assert client.list_workspaces()[0]["id"] == 4242
    assert waits == [7.0, 3.0]

    webwork.fail_next(*[status(429, {"Retry-After": "2"})] * 10)
    with pytest.raises(Unavailable) as info:
        make_client(webwork, token, limiter, []).list_workspaces()
    assert info.value.status == 429 and info.value.retry_after == 2.0
    webwork.faults.clear()
    # A Retry-After longer than the client may wait in-line goes back to the caller at once.
    webwork.fail_next(status(429, {"Retry-After": "900"}))
    with pytest.raises(Unavailable) as info:
        make_client(webwork, token, limiter, []).list_workspaces()
    assert info.value.retry_after == 900.0


def test_5xx_timeouts_and_dropped_connections_back_off_then_succeed(
    webwork: FakeWebWork, limiter: NoLimiter
) -> None:
    token = webwork.add_token()
    for i in range(150):
        webwork.add_timesheet(f"ts-{i:03d}", ADA, "2026-11-02", "2026-11-08", {})
    waits: list[float] = []
    client = make_client(webwork, token, limiter, waits)
    got: list[str] = []
    iterator = client.timesheet_pages(
        "4242", date_from=date(2026, 1, 1), date_to=date(2026, 12, 31)
    )
    got += [t["id"] for t in next(iterator).items]
    webwork.fail_next(status(502), TIMEOUT, DROPPED)  # all on page 2
    got += [t["id"] for page in iterator for t in page.items]
    assert got == [f"ts-{i:03d}" for i in range(150)]
    assert len(waits) == 3 and all(0 < w <= 30 for w in waits)


def test_server_errors_that_last_become_unavailable_never_a_requests_exception(
    webwork: FakeWebWork, limiter: NoLimiter
) -> None:
    token = webwork.add_token()
    webwork.fail_next(*[status(503)] * 5)
    with pytest.raises(Unavailable):
        make_client(webwork, token, limiter, []).list_workspaces()
    webwork.fail_next(*[TIMEOUT] * 5)
    with pytest.raises(Unavailable) as info:
        make_client(webwork, token, limiter, []).list_workspaces()
    assert not isinstance(info.value, requests.RequestException)
    webwork.fail_next(lambda _r: (200, {}, "<html>gateway</html>"))
    with pytest.raises(TrackerError):
        make_client(webwork, token, limiter, []).list_workspaces()


def test_403_says_owner_or_executive_manager(webwork: FakeWebWork, limiter: NoLimiter) -> None:
    token = webwork.add_token(role="member")
    with pytest.raises(Forbidden) as info:
        make_client(webwork, token, limiter, []).list_workspaces()
    assert FORBIDDEN_MESSAGE in info.value.message
    assert "Owner or Executive manager" in info.value.message


def test_401_with_a_personal_token_holds_for_reconnect(
    webwork: FakeWebWork, limiter: NoLimiter
) -> None:
    with pytest.raises(ReconnectRequired):
        make_client(webwork, jwt("9"), limiter, []).list_workspaces()


def test_limiter_is_keyed_per_webwork_user_not_per_token(
    webwork: FakeWebWork, limiter: NoLimiter
) -> None:
    first, second = webwork.add_token("501"), webwork.add_token("501", name="Same person")
    other = webwork.add_token("777")
    for token in (first, second, other):
        make_client(webwork, token, limiter, []).list_workspaces()
    buckets = [bucket for bucket, _ in limiter.calls]
    assert buckets == ["webwork:user-501", "webwork:user-501", "webwork:user-777"]
    ((one, every),) = limiter.calls[0][1]
    # One request per 60/57 s: no sliding minute can exceed WebWork's 60 (58 at most).
    assert one == 1 and every == pytest.approx(60 / 57)


def test_malformed_items_in_a_page_are_marked_not_raised(
    webwork: FakeWebWork, limiter: NoLimiter
) -> None:
    token = webwork.add_token()
    webwork.fail_next(
        lambda _r: (
            200,
            {},
            '{"success": true, "data": [{"id": "a"}, 42, "x"], '
            '"pagination": {"current_page": 1, "last_page": 1}}',
        )
    )
    client = make_client(webwork, token, limiter, [])
    page = next(
        client.timesheet_pages("4242", date_from=date(2026, 1, 1), date_to=date(2026, 2, 1))
    )
    assert page.items == [{"id": "a"}, {"__malformed__": 42}, {"__malformed__": "x"}]


def test_real_shared_limiter_paces_requests(app: Any) -> None:
    """The database limiter with a fake clock: 200 requests stay under 60 in any minute."""
    from connector.ratelimit_db import DatabaseRateLimiter

    now = [1_000_000.0]
    limiter = DatabaseRateLimiter(
        clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    stamps = []
    for _ in range(200):
        limiter.acquire("webwork:user-1", SETTINGS.limits())
        stamps.append(now[0])
    worst = max(sum(1 for t in stamps if start <= t < start + 60) for start in stamps)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 60
    assert worst <= 60
    assert rate >= 54  # at least 90% of WebWork's 60/min

"""The shared OAuth2 client at the wire: what each client-auth style sends, what is stored of an
answer, and how every refusal or failure is classified (permanent, or try later and when)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connector.oauth import client
from connector.oauth.client import OAuthApp, OAuthError

TOKEN = "https://auth.example.test/token"
REVOKE = "https://auth.example.test/revoke"
BASIC = OAuthApp(
    label="Books",
    client_id="cid",
    client_secret="s3cret",
    authorize_url="https://auth.example.test/authorize",
    token_url=TOKEN,
    revoke_url=REVOKE,
    scopes=("accounting", "offline_access"),
    refresh_lifetime_field="x_refresh_token_expires_in",
    keep_fields=("id_token",),
)
POST = OAuthApp(
    label="Tracker",
    client_id="cid",
    client_secret="s3cret",
    authorize_url="https://auth.example.test/authorize",
    token_url=TOKEN,
    scopes=("read",),
    client_auth="client_secret_post",
    refresh_scope=True,
    default_expires_in=1296000,
    refresh_lifetime=2592000,
)


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock() as mock:
        yield mock


def form(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


def test_authorize_url_carries_the_scopes_state_and_pkce() -> None:
    url = client.authorize_url(BASIC, redirect_uri="https://me.test/cb", state="st-1")
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "response_type": ["code"],
        "client_id": ["cid"],
        "redirect_uri": ["https://me.test/cb"],
        "scope": ["accounting offline_access"],
        "state": ["st-1"],
    }
    pkce = parse_qs(
        urlsplit(
            client.authorize_url(BASIC, redirect_uri="x", state="s", code_verifier="v" * 64)
        ).query
    )
    assert pkce["code_challenge_method"] == ["S256"] and pkce["code_challenge"][0]


def test_exchange_with_basic_auth_stores_absolute_expiries_and_kept_fields(rsps: Any) -> None:
    rsps.add(
        responses.POST,
        TOKEN,
        json={
            "access_token": "a1",
            "refresh_token": "r1",
            "expires_in": 1800,
            "x_refresh_token_expires_in": 5184000,
            "token_type": "Bearer",
            "id_token": "idt",
        },
    )
    before = time.time()
    got = client.exchange_code(BASIC, code="c1", redirect_uri="https://me.test/cb")
    (call,) = rsps.calls
    assert call.request.headers["Authorization"] == "Basic Y2lkOnMzY3JldA=="
    assert form(call) == {
        "grant_type": ["authorization_code"],
        "code": ["c1"],
        "redirect_uri": ["https://me.test/cb"],
    }
    assert got["access_token"] == "a1" and got["refresh_token"] == "r1"
    assert got["id_token"] == "idt"
    assert before + 1800 <= got["expires_at"] <= before + 1810
    assert before + 5184000 <= got["refresh_expires_at"] <= before + 5184010


def test_refresh_with_client_secret_post_and_no_rotation_keeps_the_refresh_token(
    rsps: Any,
) -> None:
    rsps.add(responses.POST, TOKEN, json={"access_token": "a2"})
    got = client.refresh(POST, "r1")
    (call,) = rsps.calls
    assert "Authorization" not in call.request.headers
    assert form(call) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["r1"],
        "scope": ["read"],
        "client_id": ["cid"],
        "client_secret": ["s3cret"],
    }
    assert got["refresh_token"] == "r1"
    assert "refresh_expires_at" not in got  # not renewed: it did not rotate
    assert got["expires_at"] > time.time() + 1295000  # the documented default


@pytest.mark.parametrize(
    ("status", "body", "headers", "permanent", "error", "wait"),
    [
        (400, {"error": "invalid_grant"}, {}, True, "invalid_grant", None),
        (
            401,
            {"error": "invalid_client", "error_description": "bad"},
            {},
            True,
            "invalid_client",
            None,
        ),
        (400, {"error": "something_new"}, {}, True, "something_new", None),
        (429, "<html>slow down</html>", {"Retry-After": "7"}, False, None, 7.0),
        (429, {"error": "slow_down"}, {"Retry-After": "3"}, False, "slow_down", 3.0),
        (503, "<html>down</html>", {}, False, None, None),
        (503, {"error": "temporarily_unavailable"}, {}, False, "temporarily_unavailable", None),
        (200, {"token_type": "bearer"}, {}, False, None, None),  # no access token
        (200, [1, 2], {}, False, None, None),
        (404, "not here", {}, True, None, None),
    ],
)
def test_refusals_and_failures_are_classified(
    rsps: Any,
    status: int,
    body: Any,
    headers: dict[str, str],
    permanent: bool,
    error: str | None,
    wait: float | None,
) -> None:
    kwargs = (
        {"body": body}
        if isinstance(body, str)
        else {"body": json.dumps(body), "content_type": "application/json"}
    )
    rsps.add(responses.POST, TOKEN, status=status, headers=headers, **kwargs)
    with pytest.raises(OAuthError) as caught:
        client.refresh(BASIC, "r1")
    assert (caught.value.permanent, caught.value.error, caught.value.retry_after) == (
        permanent,
        error,
        wait,
    )
    assert caught.value.status == status
    assert "Books" in caught.value.message and "r1" not in caught.value.message


@pytest.mark.parametrize("failure", [requests.ConnectionError("x"), requests.ReadTimeout("t")])
def test_an_unreachable_endpoint_is_transient(rsps: Any, failure: Exception) -> None:
    rsps.add(responses.POST, TOKEN, body=failure)
    with pytest.raises(OAuthError) as caught:
        client.exchange_code(BASIC, code="c", redirect_uri="x")
    assert not caught.value.permanent and "could not be reached" in caught.value.message


def test_revoke_form_or_json(rsps: Any) -> None:
    rsps.add(responses.POST, REVOKE, status=200)
    rsps.add(responses.POST, REVOKE, status=200)
    client.revoke(BASIC, "r1")
    client.revoke(OAuthApp(**{**BASIC.__dict__, "revoke_body": "json"}), "r2")
    first, second = rsps.calls
    assert form(first) == {"token": ["r1"]}  # RFC 7009
    assert json.loads(second.request.body) == {"token": "r2"}  # Intuit's style
    assert second.request.headers["Authorization"].startswith("Basic ")


def test_revoke_failures_are_classified(rsps: Any) -> None:
    rsps.add(responses.POST, REVOKE, status=503)
    with pytest.raises(OAuthError) as caught:
        client.revoke(BASIC, "r1")
    assert not caught.value.permanent
    with pytest.raises(OAuthError, match="no revoke endpoint"):
        client.revoke(POST, "r1")

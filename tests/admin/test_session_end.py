"""An ended session loses nothing, sign-out says so, and sessions end when idle (#21 item 6)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from connector import db
from connector.config import ConfigurationError
from connector.models import ApiToken, ConsoleHeldValue
from tests.app_fixtures import csrf_token

PASSWORD = "correct horse battery"


class Browser:
    """One browser (one cookie jar); each request in its own app context, as in production
    (flask-login keeps the signed-in admin in ``g``, which the test's app context would share)."""

    def __init__(self, app: Any):
        self.app = app
        self.client = app.test_client()

    def get(self, url: str, **kw: Any) -> Any:
        with self.app.app_context():
            return self.client.get(url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        with self.app.app_context():
            return self.client.post(url, **kw)

    def token(self) -> str:
        with self.app.app_context():
            return csrf_token(self.client)

    def sign_in(self, email: str) -> Any:
        data = {"email": email, "password": PASSWORD, "csrf_token": self.token()}
        return self.post("/login", data=data)

    def session(self) -> Any:
        return self.client.session_transaction()


@pytest.fixture
def browser(app: Any, workspace: Any, make_admin: Any) -> Browser:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    b = Browser(app)
    assert b.sign_in("ada@example.com").status_code == 302
    return b


def _tokens_named(name: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(ApiToken).where(ApiToken.name == name)
    )


def test_sign_out_says_you_are_signed_out(browser: Browser) -> None:
    response = browser.post("/logout", data={"csrf_token": browser.token()})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    page = browser.get("/login").get_data(as_text=True)
    assert "You are signed out" in page
    # Signing out again (a second tab's button) says the same, never an error.
    again = browser.post("/logout", data={"csrf_token": browser.token()})
    assert again.status_code == 302
    assert "You are signed out" in browser.get("/login").get_data(as_text=True)


def test_a_form_sent_after_sign_out_is_kept_and_shown_filled_in_after_sign_in(
    browser: Browser, workspace: Any
) -> None:
    tokens = f"/workspaces/{workspace.id}/tokens"
    form_token = browser.token()  # the form as another tab rendered it
    browser.post("/logout", data={"csrf_token": browser.token()})  # signed out in one tab

    sent = browser.post(
        tokens, data={"name": "reporting", "csrf_token": form_token}, headers={"Referer": tokens}
    )
    assert sent.status_code == 302 and "/login" in sent.headers["Location"]
    assert _tokens_named("reporting") == 0  # nothing done while signed out
    login_page = browser.get(sent.headers["Location"]).get_data(as_text=True)
    assert "not saved yet" in login_page and "filled in" in login_page

    # Kept server-side, encrypted, never in a URL or the cookie.
    [row] = db.session.scalars(select(ConsoleHeldValue)).all()
    assert "reporting" not in row.value_encrypted
    assert "reporting" not in sent.headers["Location"]
    with browser.session() as sess:
        assert "reporting" not in str(dict(sess))

    signed_in = browser.sign_in("ada@example.com")
    assert signed_in.headers["Location"].endswith("/session/resume")
    resume = browser.get("/session/resume")
    text = resume.get_data(as_text=True)
    assert resume.headers["Cache-Control"] == "no-store"
    assert f'action="{tokens}"' in text
    assert '<input type="hidden" name="name" value="reporting">' in text
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)

    # The CSRF check is made again: without a token the kept form is refused like any other.
    assert browser.post(tokens, data={"name": "reporting"}).status_code == 400
    saved = browser.post(tokens, data={"name": "reporting", "csrf_token": fresh})
    assert saved.status_code == 303
    assert _tokens_named("reporting") == 1
    # Used once: a second visit finds nothing waiting.
    assert browser.get("/session/resume").status_code == 302


def test_a_kept_form_is_only_for_the_admin_who_sent_it(
    browser: Browser, workspace: Any, make_admin: Any
) -> None:
    make_admin(workspace, email="bob@example.com", password=PASSWORD)
    form_token = browser.token()
    browser.post("/logout", data={"csrf_token": browser.token()})
    browser.post(
        f"/workspaces/{workspace.id}/tokens", data={"name": "ada's", "csrf_token": form_token}
    )
    # Someone else signs in on this browser: they are not shown Ada's form.
    assert not browser.sign_in("bob@example.com").headers["Location"].endswith("/session/resume")
    assert "ada&#39;s" not in browser.get("/session/resume", follow_redirects=True).get_data(
        as_text=True
    )


def test_a_confirmation_is_never_kept(browser: Browser, workspace: Any) -> None:
    """A destructive action sent while signed out asks again after sign-in."""
    token_id = db.session.scalar(select(ApiToken.id))
    url = f"/workspaces/{workspace.id}/tokens/{token_id}/revoke"
    form_token = browser.token()
    browser.post("/logout", data={"csrf_token": browser.token()})
    browser.post(url, data={"csrf_token": form_token, "confirmed": "yes"})
    browser.sign_in("ada@example.com")
    text = browser.get("/session/resume").get_data(as_text=True)
    assert 'name="confirmed"' not in text
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
    asked = browser.post(url, data={"csrf_token": fresh})
    assert asked.status_code == 200 and "Revoke the API token" in asked.get_data(as_text=True)
    assert db.session.scalar(select(ApiToken.revoked_at).where(ApiToken.id == token_id)) is None


def test_an_idle_session_ends_and_a_copy_of_its_cookie_is_refused(
    app: Any, browser: Browser, workspace: Any
) -> None:
    app.config["ADMIN_SESSION_IDLE_MINUTES"] = 5
    page = f"/workspaces/{workspace.id}"
    assert browser.get(page).status_code == 200
    with browser.session() as sess:
        sess["_seen"] = int(time.time()) - 6 * 60  # six minutes without a request
    stolen = browser.client.get_cookie("session").value

    response = browser.get(page)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "without activity" in browser.get(response.headers["Location"]).get_data(as_text=True)

    replay = Browser(app)
    replay.client.set_cookie("session", stolen)
    assert replay.get(page).status_code == 302

    # Active sessions stay: a request within the limit keeps it going.
    browser.sign_in("ada@example.com")
    with browser.session() as sess:
        sess["_seen"] = int(time.time()) - 4 * 60
    assert browser.get(page).status_code == 200


@pytest.mark.parametrize("value", ["0", "-5", "abc", "10081", "²"])
def test_a_bad_idle_timeout_refuses_to_start(database_url: str, value: str) -> None:
    from connector import create_app
    from connector.config import load_config
    from tests.app_fixtures import app_overrides

    minutes = load_config({"ADMIN_SESSION_IDLE_MINUTES": value})["ADMIN_SESSION_IDLE_MINUTES"]
    with pytest.raises(ConfigurationError) as err:
        create_app({**app_overrides(database_url), "ADMIN_SESSION_IDLE_MINUTES": minutes})
    assert "ADMIN_SESSION_IDLE_MINUTES" in str(err.value)


def test_the_idle_timeout_defaults_to_an_hour() -> None:
    from connector.config import load_config

    assert load_config({})["ADMIN_SESSION_IDLE_MINUTES"] == 60

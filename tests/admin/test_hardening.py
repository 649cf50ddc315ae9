"""Console hardening (issue #9 item 9): sign-in throttling, cookies, security headers, sessions
that sign-out ends, production refusing weak secrets, and ids beyond the column range."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import g

from connector import create_app
from connector.config import ConfigurationError, production_problems
from tests.app_fixtures import app_overrides, csrf_token

PASSWORD = "correct horse battery"
TEMPLATES = Path(__file__).resolve().parents[2] / "connector" / "admin" / "templates"


def _login(client: Any, email: str, password: str, address: str = "203.0.113.7") -> Any:
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
        environ_base={"REMOTE_ADDR": address},
    )


# --- sign-in throttling ---------------------------------------------------------------------------
def test_failed_sign_ins_are_throttled_per_account(
    app: Any, workspace: Any, make_admin: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    make_admin(workspace, email="bob@example.com", password=PASSWORD)
    client = app.test_client()
    limit = 10  # ADMIN_LOGIN_FAILURES_PER_ACCOUNT's default: 10 per 15 minutes
    for attempt in range(limit):
        # From a new address each time: the per-address limit alone would not stop this.
        response = _login(client, "ada@example.com", "guess", address=f"198.51.100.{attempt}")
        assert response.status_code == 401, attempt
    blocked = _login(client, "ada@example.com", PASSWORD, address="198.51.100.200")
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert b"Too many failed sign-ins" in blocked.data
    assert "_user_id" not in _session(client)
    # Another account is not locked out by attacks on Ada.
    assert _login(client, "bob@example.com", PASSWORD).status_code == 302


def test_failed_sign_ins_are_throttled_per_address(
    app: Any, workspace: Any, make_admin: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    client = app.test_client()
    for attempt in range(30):  # ADMIN_LOGIN_FAILURES_PER_ADDRESS's default: 30 per 15 minutes
        response = _login(client, f"user{attempt}@example.com", "guess", address="203.0.113.9")
        assert response.status_code == 401, attempt
    assert _login(client, "ada@example.com", PASSWORD, address="203.0.113.9").status_code == 429
    # The same account from another address still signs in.
    assert _login(client, "ada@example.com", PASSWORD, address="203.0.113.10").status_code == 302


def test_throttle_counts_are_shared_by_every_process(
    app: Any, database_url: str, workspace: Any, make_admin: Any
) -> None:
    """Two app instances stand in for two gunicorn workers: failures on one count on the other."""
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    other = create_app(app_overrides(database_url))
    clients = [app.test_client(), other.test_client()]
    for attempt in range(10):
        client = clients[attempt % 2]
        assert _login(client, "ada@example.com", "guess").status_code == 401
    for client in clients:
        assert _login(client, "ada@example.com", PASSWORD).status_code == 429


def test_throttle_storage_is_redis_when_configured_else_the_database(app: Any) -> None:
    storage = app.extensions["login_throttle"].storage
    if app.config.get("REDIS_URL"):
        assert type(storage).__name__ == "RedisStorage"
    else:
        assert type(storage).__name__ == "DatabaseStorage"


def _forget_request_user() -> None:
    """The app fixture keeps one app context for the whole test, so flask-login's per-request
    cache (g._login_user) would outlive a request: drop it so the next request reads its cookie.
    """
    g.pop("_login_user", None)


def _session(client: Any) -> dict[str, Any]:
    with client.session_transaction() as sess:
        return dict(sess)


# --- cookies and headers --------------------------------------------------------------------------
def test_session_cookie_is_samesite_lax_and_httponly(
    app: Any, workspace: Any, make_admin: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    client = app.test_client()
    response = _login(client, "ada@example.com", PASSWORD)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie


def test_security_headers_on_every_response(admin_client: Any, workspace: Any) -> None:
    for path in (
        "/login",
        f"/workspaces/{workspace.id}/approvals",
        "/workspaces/424242/approvals",  # 404
        "/admin/static/admin.css",
        "/healthz",
        "/api/v1/openapi.json",
        "/api/v1/rates",  # 401 problem
    ):
        response = admin_client.get(path)
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp, path
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "'unsafe-inline'" not in csp, path
        assert headers.get("X-Frame-Options") == "DENY", path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") == "same-origin", path
        assert "Strict-Transport-Security" not in headers, path  # plain http in development


def test_hsts_in_production(database_url: str, monkeypatch: Any) -> None:
    overrides = {
        **app_overrides(database_url),
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),  # a patterned key is refused (issue 20 item 6)
        "TOKEN_ENCRYPTION_KEYS": [base64.urlsafe_b64encode(os.urandom(32)).decode()],
        "PUBLIC_BASE_URL": "https://invoicer.example.com",
    }
    app = create_app(overrides)
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_console_templates_have_no_inline_script_style_or_handler() -> None:
    """The CSP allows only this origin's files: inline code would silently stop working."""
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (
            r"<script(?![^>]*\bsrc=)",
            r"<style",
            r"\sstyle\s*=",
            r"\son[a-z]+\s*=",
            r"javascript:",
        ):
            if re.search(pattern, text, re.IGNORECASE):
                offenders.append(f"{path.name}: {pattern}")
    assert offenders == []


# --- sign-out ends the session --------------------------------------------------------------------
def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    app: Any, workspace: Any, make_admin: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    client = app.test_client()
    assert _login(client, "ada@example.com", PASSWORD).status_code == 302
    page = f"/workspaces/{workspace.id}/approvals"
    assert client.get(page).status_code == 200
    stolen = client.get_cookie("session").value

    client.post("/logout", data={"csrf_token": csrf_token(client)})
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    _forget_request_user()
    response = replay.get(page)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_new_sign_in_works_after_sign_out(app: Any, workspace: Any, make_admin: Any) -> None:
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    client = app.test_client()
    _login(client, "ada@example.com", PASSWORD)
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert _login(client, "ada@example.com", PASSWORD).status_code == 302
    assert client.get(f"/workspaces/{workspace.id}/approvals").status_code == 200


# --- ids beyond the column range ------------------------------------------------------------------
@pytest.mark.parametrize("number", ["2147483648", "99999999999999999999"])
def test_console_ids_beyond_the_column_range_are_404(
    admin_client: Any, workspace: Any, number: str
) -> None:
    for path in (
        f"/workspaces/{number}/approvals",
        f"/workspaces/{number}/settings",
        f"/workspaces/{workspace.id}/deliveries/{number}",
    ):
        assert admin_client.get(path).status_code == 404, path
    page = admin_client.get(f"/workspaces/{workspace.id}/approvals?page={number}")
    assert page.status_code == 200


def test_console_405_carries_allow(admin_client: Any) -> None:
    response = admin_client.put("/login")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


# --- production refuses weak secrets --------------------------------------------------------------
STRONG = {
    "APP_ENV": "production",
    "SECRET_KEY": "Zq8t-" + "x7Kp2mNv9Rw4Ls6Hd3Fb1Jc5" * 2,
    "TOKEN_ENCRYPTION_KEYS": [base64.urlsafe_b64encode(bytes(range(32))).decode()],
    "PUBLIC_BASE_URL": "https://invoicer.example.com",
}


def test_strong_production_configuration_passes() -> None:
    assert production_problems(STRONG) == []


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY"),
        ({"SECRET_KEY": "a" * 64}, "SECRET_KEY"),
        ({"SECRET_KEY": "secret-key-12345"}, "SECRET_KEY"),
        ({"TOKEN_ENCRYPTION_KEYS": ["not-a-fernet-key"]}, "TOKEN_ENCRYPTION_KEYS"),
        (
            {"TOKEN_ENCRYPTION_KEYS": [base64.urlsafe_b64encode(b"\0" * 32).decode()]},
            "TOKEN_ENCRYPTION_KEYS",
        ),
    ],
)
def test_production_refuses_weak_secrets(changes: dict[str, Any], named: str) -> None:
    problems = production_problems({**STRONG, **changes})
    assert problems and named in problems[0]


def test_web_app_refuses_to_start_with_weak_secrets(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app({**app_overrides(database_url), **STRONG, "SECRET_KEY": "changeme"})


@pytest.mark.slow
def test_worker_exits_non_zero_when_it_refuses_to_start(tmp_path: Path) -> None:
    consumer = Path(sys.executable).with_name("huey_consumer")
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": "changeme",
        "PUBLIC_BASE_URL": "https://invoicer.example.com",
        "WORKER_IMMEDIATE": "false",
        "QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
    }
    env.pop("TOKEN_ENCRYPTION_KEYS", None)
    # A refusing worker must exit (so the platform restarts/alerts), not sit idle: the timeout
    # only bounds a broken run, it is not what the test measures.
    result = subprocess.run(
        [str(consumer), "connector.consumer.huey", "--workers", "1", "--worker-type", "thread"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr + result.stdout


@pytest.mark.parametrize("hops", [0, 1])
def test_client_address_comes_from_trusted_proxies_only(
    database_url: str, workspace: Any, make_admin: Any, hops: int
) -> None:
    """Behind one proxy (hops=1) each client has its own allowance; with hops=0 a forged
    X-Forwarded-For does not buy an attacker a fresh one."""
    make_admin(workspace, email="ada@example.com", password=PASSWORD)
    app = create_app(
        {
            **app_overrides(database_url),
            "TRUSTED_PROXY_HOPS": hops,
            "ADMIN_LOGIN_FAILURES_PER_ADDRESS": "3 per 15 minutes",
        }
    )
    client = app.test_client()

    def attempt(forwarded_for: str, email: str, password: str) -> int:
        return client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_token(client)},
            headers={"X-Forwarded-For": forwarded_for},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},  # the proxy
        ).status_code

    for n in range(3):
        assert attempt("198.51.100.1", f"user{n}@example.com", "guess") == 401
    assert attempt("198.51.100.2", "ada@example.com", PASSWORD) == (302 if hops else 429)
    app.extensions["login_throttle"].reset()

"""Intuit OAuth 2.0 for QuickBooks Online, done with plain ``requests``.

Why not ``intuitlib.AuthClient``: it fetches Intuit's OpenID discovery document over the network
when it is constructed and sends its requests without a timeout. The three calls we need
(exchange a code, refresh, revoke) are small documented form/JSON POSTs, so doing them here keeps
every URL overridable, every call bounded by a timeout, and every failure classified.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

SCOPE = "com.intuit.quickbooks.accounting"
ENVIRONMENTS = ("sandbox", "production")
DEFAULT_AUTH_URL = "https://appcenter.intuit.com/connect/oauth2"
DEFAULT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
DEFAULT_REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
API_BASE_URLS = {
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
    "production": "https://quickbooks.api.intuit.com",
}
APP_BASE_URLS = {
    "sandbox": "https://app.sandbox.qbo.intuit.com",
    "production": "https://app.qbo.intuit.com",
}
CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 60.0


class QuickBooksConfigError(ValueError):
    """The deployment's QuickBooks settings are missing or wrong (an operator must fix them)."""


class OAuthError(Exception):
    """Intuit's token endpoint refused or failed.

    ``permanent`` is True when only a new consent can help (``invalid_grant``: the refresh token
    is expired, revoked or was already rotated away).
    """

    def __init__(self, message: str, *, permanent: bool, error: str | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.error = error


@dataclass(frozen=True)
class IntuitSettings:
    client_id: str
    client_secret: str
    environment: str
    auth_url: str
    token_url: str
    revoke_url: str
    api_base_url: str
    app_base_url: str
    read_timeout: float

    @property
    def timeout(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self.read_timeout)


def check_environment(value: Any) -> str:
    """Exactly ``sandbox`` or ``production``: ``"Sandbox"`` would silently mean production in the
    Intuit SDK, so anything else is refused here, loudly."""
    if value not in ENVIRONMENTS:
        raise QuickBooksConfigError(
            f"QUICKBOOKS_ENVIRONMENT must be exactly 'sandbox' or 'production', not {value!r}."
        )
    return str(value)


def settings_from_config(
    config: Mapping[str, Any], environment: str | None = None, *, require_keys: bool = True
) -> IntuitSettings:
    """Intuit endpoints and keys from the app config; ``environment`` (the one a connection was
    made in) wins over ``QUICKBOOKS_ENVIRONMENT``."""
    configured = check_environment(config.get("QUICKBOOKS_ENVIRONMENT") or "sandbox")
    env = check_environment(environment or configured)
    client_id = str(config.get("QUICKBOOKS_CLIENT_ID") or "")
    client_secret = str(config.get("QUICKBOOKS_CLIENT_SECRET") or "")
    if require_keys and not (client_id and client_secret):
        raise QuickBooksConfigError(
            "QuickBooks is not configured: set QUICKBOOKS_CLIENT_ID and QUICKBOOKS_CLIENT_SECRET "
            "(Intuit developer portal, Keys & credentials)."
        )
    try:
        read_timeout = float(config.get("QUICKBOOKS_TIMEOUT_SECONDS") or DEFAULT_READ_TIMEOUT)
    except (TypeError, ValueError) as exc:
        raise QuickBooksConfigError("QUICKBOOKS_TIMEOUT_SECONDS must be a number.") from exc

    def url(name: str, default: str) -> str:
        return str(config.get(name) or default).rstrip("/")

    return IntuitSettings(
        client_id=client_id,
        client_secret=client_secret,
        environment=env,
        auth_url=url("QUICKBOOKS_AUTH_URL", DEFAULT_AUTH_URL),
        token_url=url("QUICKBOOKS_TOKEN_URL", DEFAULT_TOKEN_URL),
        revoke_url=url("QUICKBOOKS_REVOKE_URL", DEFAULT_REVOKE_URL),
        api_base_url=url("QUICKBOOKS_API_BASE_URL", API_BASE_URLS[env]),
        app_base_url=url("QUICKBOOKS_APP_BASE_URL", APP_BASE_URLS[env]),
        read_timeout=read_timeout,
    )


def authorize_url(settings: IntuitSettings, *, redirect_uri: str, state: str) -> str:
    query = urlencode(
        {
            "client_id": settings.client_id,
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{settings.auth_url}?{query}"


def _token_request(settings: IntuitSettings, data: dict[str, str]) -> dict[str, Any]:
    try:
        response = requests.post(
            settings.token_url,
            data=data,
            auth=(settings.client_id, settings.client_secret),
            headers={"Accept": "application/json"},
            timeout=settings.timeout,
        )
    except requests.RequestException as exc:
        raise OAuthError(
            f"Intuit's token endpoint could not be reached ({type(exc).__name__}).",
            permanent=False,
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and body.get("access_token") and body.get("refresh_token"):
        return body
    error = str(body.get("error") or "")
    description = str(body.get("error_description") or "")
    if error in ("invalid_grant", "invalid_client", "unauthorized_client") or (
        response.status_code in (400, 401) and error
    ):
        # invalid_grant: refresh token expired/revoked/rotated away, or the code was used.
        # invalid_client: the app's keys are wrong or the app was deleted. Both need a human.
        raise OAuthError(
            f"Intuit refused the token request: {error}"
            + (f" ({description})" if description else ""),
            permanent=True,
            error=error,
        )
    raise OAuthError(
        f"Intuit's token endpoint answered HTTP {response.status_code}.",
        permanent=response.status_code < 500 and response.status_code != 429,
        error=error or None,
    )


def _credentials(body: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    creds: dict[str, Any] = {
        "access_token": body["access_token"],
        "refresh_token": body["refresh_token"],
        "token_type": body.get("token_type", "bearer"),
        "expires_at": now + float(body.get("expires_in") or 3600),
    }
    if body.get("x_refresh_token_expires_in"):
        creds["refresh_expires_at"] = now + float(body["x_refresh_token_expires_in"])
    return creds


def exchange_code(settings: IntuitSettings, *, code: str, redirect_uri: str) -> dict[str, Any]:
    """Trade the callback's authorization code for tokens (the credentials dict we store)."""
    body = _token_request(
        settings,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
    )
    return _credentials(body)


def refresh(settings: IntuitSettings, refresh_token: str) -> dict[str, Any]:
    """New access token; the refresh token may rotate, so the result must be saved at once."""
    body = _token_request(settings, {"grant_type": "refresh_token", "refresh_token": refresh_token})
    return _credentials(body)


def revoke(settings: IntuitSettings, token: str) -> None:
    """Revoke a refresh (or access) token; revoking the refresh token ends the whole grant."""
    try:
        response = requests.post(
            settings.revoke_url,
            json={"token": token},
            auth=(settings.client_id, settings.client_secret),
            headers={"Accept": "application/json"},
            timeout=settings.timeout,
        )
    except requests.RequestException as exc:
        raise OAuthError(
            f"Intuit's revoke endpoint could not be reached ({type(exc).__name__}).",
            permanent=False,
        ) from exc
    if response.status_code != 200:
        raise OAuthError(
            f"Intuit's revoke endpoint answered HTTP {response.status_code}.",
            permanent=response.status_code < 500,
        )

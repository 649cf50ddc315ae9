"""QuickBooks Online's settings and its Intuit OAuth 2.0 app, for the shared OAuth client.

The wire (exchange, refresh, revoke) is :mod:`connector.oauth.client`; this module only says what
is Intuit's: its endpoints (overridable), client authentication by HTTP Basic, the accounting
scope, a revoke that takes JSON, and the refresh token's lifetime in
``x_refresh_token_expires_in``. Why not ``intuitlib.AuthClient``: it fetches Intuit's OpenID
discovery document over the network when it is constructed and sends requests without a timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.oauth import client as oauth
from connector.oauth.client import OAuthApp, OAuthError

__all__ = ["OAuthError", "QuickBooksConfigError", "oauth_app", "settings_from_config"]

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


def oauth_app(settings: IntuitSettings) -> OAuthApp:
    """Intuit's OAuth app as the shared client needs it."""
    return OAuthApp(
        label="QuickBooks",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        authorize_url=settings.auth_url,
        token_url=settings.token_url,
        revoke_url=settings.revoke_url,
        scopes=(SCOPE,),
        client_auth="client_secret_basic",
        revoke_body="json",
        default_expires_in=3600.0,
        refresh_lifetime_field="x_refresh_token_expires_in",
        read_timeout=settings.read_timeout,
    )


def authorize_url(settings: IntuitSettings, *, redirect_uri: str, state: str) -> str:
    return oauth.authorize_url(oauth_app(settings), redirect_uri=redirect_uri, state=state)


def exchange_code(settings: IntuitSettings, *, code: str, redirect_uri: str) -> dict[str, Any]:
    """Trade the callback's authorization code for tokens (the credentials dict we store)."""
    return oauth.exchange_code(oauth_app(settings), code=code, redirect_uri=redirect_uri)


def refresh(settings: IntuitSettings, refresh_token: str) -> dict[str, Any]:
    """New access token; the refresh token may rotate, so the result must be saved at once."""
    return oauth.refresh(oauth_app(settings), refresh_token)


def revoke(settings: IntuitSettings, token: str) -> None:
    """Revoke a refresh (or access) token; revoking the refresh token ends the whole grant."""
    oauth.revoke(oauth_app(settings), token)

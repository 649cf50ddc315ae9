"""Stripe's connect-time calls (check a pasted key, finish and revoke Connect OAuth), behind the
provider boundary like QuickBooks' OAuth module: the connect pages never see the SDK or its
exceptions, only plain-language :class:`ConnectError` messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe
from stripe.oauth_error import OAuthError

from connector.providers.stripe.client import (
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_API_BASE_URL,
    DEFAULT_CONNECT_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
    STRIPE_API_VERSION,
)

NEEDED_PERMISSIONS = "Customers: Write and Invoices: Write"
# The status-sync signing secret the admin pastes, kept encrypted in the connection's meta
# (written by the connect page, read by the webhook receiver).
META_WEBHOOK_SECRET = "webhook_secret_encrypted"
META_WEBHOOK_SECRET_HINT = "webhook_secret_hint"


class ConnectError(Exception):
    """Stripe refused or could not be reached; ``message`` is for the admin, as it is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _client(
    config: Mapping[str, Any], api_key: str, *, stripe_account: str | None = None
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        stripe_account=stripe_account,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={
            "api": config.get("STRIPE_API_BASE_URL") or DEFAULT_API_BASE_URL,
            "connect": config.get("STRIPE_CONNECT_BASE_URL") or DEFAULT_CONNECT_BASE_URL,
        },
        max_network_retries=0,
        http_client=stripe.RequestsClient(
            timeout=(
                CONNECT_TIMEOUT_SECONDS,
                float(config.get("STRIPE_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS),
            )
        ),
    )


def validate_key(config: Mapping[str, Any], api_key: str) -> str | None:
    """Prove the key can read customers and invoices; the account id if Stripe tells it.

    Raises ValueError with a plain-language message when the key cannot be used.
    """
    client = _client(config, api_key)
    try:
        client.v1.customers.list({"limit": 1})
        client.v1.invoices.list({"limit": 1})
    except stripe.AuthenticationError as exc:
        raise ValueError(
            "Stripe did not accept this key: check that you copied all of it and that it has "
            "not been rolled or deleted in the Stripe Dashboard."
        ) from exc
    except stripe.PermissionError as exc:
        raise ValueError(
            f"The key is valid but lacks a permission the connector needs "
            f"({NEEDED_PERMISSIONS}). Stripe said: {exc.user_message}"
        ) from exc
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
        raise ValueError(
            "Stripe could not be reached to check the key; nothing was saved. Try again in a "
            "minute."
        ) from exc
    except stripe.StripeError as exc:
        raise ValueError(f"Stripe refused the key: {exc.user_message}") from exc
    try:
        # Restricted keys often may not read the account: the id is a nicety, not a requirement.
        account = client.v1.accounts.retrieve_current()
        return str(account.id) if getattr(account, "id", None) else None
    except stripe.StripeError:
        return None


def exchange_code(config: Mapping[str, Any], code: str) -> dict[str, Any]:
    """Finish Connect OAuth: the token reply (``stripe_user_id``, ``livemode``, ``scope``)."""
    client = _client(config, str(config["STRIPE_PLATFORM_SECRET_KEY"]))
    try:
        return dict(
            client.oauth.token({"grant_type": "authorization_code", "code": code}).to_dict()
        )
    except OAuthError as exc:
        raise ConnectError(f"Stripe refused the connection: {exc.user_message}") from exc
    except stripe.StripeError as exc:
        raise ConnectError("Stripe could not be reached; nothing was saved. Try again.") from exc


def deauthorize(config: Mapping[str, Any], stripe_user_id: str) -> None:
    """Revoke the platform's access to a Connect account. An account that already removed the
    app is what we wanted; anything else raises ConnectError with words for the admin."""
    client = _client(config, str(config.get("STRIPE_PLATFORM_SECRET_KEY") or ""))
    try:
        client.oauth.deauthorize(
            {
                "client_id": str(config.get("STRIPE_CONNECT_CLIENT_ID") or ""),
                "stripe_user_id": stripe_user_id,
            }
        )
    except OAuthError as exc:
        # invalid_client: the account already removed the app, which is what we wanted.
        if exc.code != "invalid_client":
            raise ConnectError(
                f"Stripe did not confirm the disconnection: {exc.user_message}"
            ) from exc
    except stripe.StripeError as exc:
        raise ConnectError(
            "Stripe could not be reached to revoke access; it is forgotten here. Remove the "
            "app under Settings > Connected accounts in Stripe to be sure."
        ) from exc

"""Xero's OAuth 2.0 app (the wire is the shared ``connector.oauth``) and its connections.

Access tokens last 30 minutes; every refresh returns a NEW refresh token (the old one stops
working): ``connector.oauth.tokens.RefreshingToken`` refreshes one process at a time and stores
the new pair before it is used. What is Xero's own is here: one consent can cover several
organisations ("tenants"); ``GET /connections`` lists them, ``DELETE /connections/{id}``
disconnects one, revoking the refresh token ends the whole grant.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from connector.oauth.client import OAuthApp, OAuthError
from connector.providers.xero.settings import XeroSettings

REFRESH_TOKEN_LIFETIME = 60 * 86400  # unused for 60 days, a Xero refresh token expires


@dataclass(frozen=True)
class Organisation:
    """One Xero connection of a grant: the organisation (tenant) and the connection's own id."""

    connection_id: str
    tenant_id: str
    name: str
    tenant_type: str = "ORGANISATION"


def oauth_app(settings: XeroSettings) -> OAuthApp:
    return OAuthApp(
        label="Xero",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        authorize_url=settings.authorize_url,
        token_url=settings.token_url,
        revoke_url=settings.revoke_url,
        scopes=tuple(settings.scopes.split()),
        client_auth="client_secret_basic",
        default_expires_in=1800.0,
        refresh_lifetime=float(REFRESH_TOKEN_LIFETIME),
        read_timeout=settings.read_timeout,
    )


def _api(settings: XeroSettings, method: str, url: str, access_token: str) -> requests.Response:
    try:
        return requests.request(
            method,
            url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=settings.timeout,
        )
    except requests.RequestException as exc:
        raise OAuthError(
            f"Xero's connections endpoint could not be reached ({type(exc).__name__}).",
            permanent=False,
        ) from None


def list_organisations(settings: XeroSettings, access_token: str) -> list[Organisation]:
    """The organisations this grant may reach (``GET /connections``)."""
    response = _api(settings, "GET", settings.connections_url, access_token)
    if response.status_code != 200:
        raise OAuthError(
            f"Xero's connections endpoint answered HTTP {response.status_code}.",
            permanent=response.status_code in (401, 403),
            status=response.status_code,
        )
    try:
        rows = response.json()
    except ValueError:
        rows = None
    if not isinstance(rows, list):
        raise OAuthError("Xero's connections endpoint sent an unreadable answer.", permanent=False)
    return [
        Organisation(
            connection_id=str(row["id"]),
            tenant_id=str(row["tenantId"]),
            name=str(row.get("tenantName") or row["tenantId"]),
            tenant_type=str(row.get("tenantType") or "ORGANISATION"),
        )
        for row in rows
        if isinstance(row, dict)
        and row.get("id")
        and row.get("tenantId")
        and str(row.get("tenantType") or "ORGANISATION") == "ORGANISATION"
    ]


def delete_connection(settings: XeroSettings, access_token: str, connection_id: str) -> None:
    """Disconnect one organisation from this app at Xero (404: already gone)."""
    url = f"{settings.connections_url}/{connection_id}"
    response = _api(settings, "DELETE", url, access_token)
    if response.status_code not in (200, 204, 404):
        raise OAuthError(
            f"Xero's connections endpoint answered HTTP {response.status_code}.",
            permanent=response.status_code < 500,
            status=response.status_code,
        )

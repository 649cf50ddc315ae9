"""Xero's OAuth 2.0 authorization code flow and its connections (organisations), with requests.

Access tokens last 30 minutes; every refresh returns a NEW refresh token (the old one stops
working), so the caller stores the result before it uses it. One grant can cover several
organisations ("tenants"): ``GET /connections`` lists them, ``DELETE /connections/{id}``
disconnects one, revoking the refresh token ends the whole grant.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from connector.providers.xero.settings import XeroSettings


class OAuthError(Exception):
    """Xero's identity service refused or failed. ``permanent``: only a new consent can help."""

    def __init__(self, message: str, *, permanent: bool, error: str | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.error = error


@dataclass(frozen=True)
class Organisation:
    """One Xero connection of a grant: the organisation (tenant) and the connection's own id."""

    connection_id: str
    tenant_id: str
    name: str
    tenant_type: str = "ORGANISATION"


def authorize_url(settings: XeroSettings, *, redirect_uri: str, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": settings.scopes,
            "state": state,
        }
    )
    return f"{settings.authorize_url}?{query}"


def _post(settings: XeroSettings, url: str, data: dict[str, str]) -> requests.Response:
    try:
        return requests.post(
            url,
            data=data,
            auth=(settings.client_id, settings.client_secret),
            headers={"Accept": "application/json"},
            timeout=settings.timeout,
        )
    except requests.RequestException as exc:
        raise OAuthError(
            f"Xero's identity service could not be reached ({type(exc).__name__}).",
            permanent=False,
        ) from exc


def _token_request(settings: XeroSettings, data: dict[str, str]) -> dict[str, Any]:
    response = _post(settings, settings.token_url, data)
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if response.status_code == 200 and body.get("access_token") and body.get("refresh_token"):
        return body
    error = str(body.get("error") or "")
    if response.status_code in (400, 401) and error:
        # invalid_grant: the refresh token expired (60 days unused), was revoked, or was already
        # rotated away; invalid_client: the app's keys are wrong. Both need a human.
        raise OAuthError(f"Xero refused the token request: {error}", permanent=True, error=error)
    raise OAuthError(
        f"Xero's token endpoint answered HTTP {response.status_code}.",
        permanent=response.status_code < 500 and response.status_code != 429,
        error=error or None,
    )


def credentials(body: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "access_token": body["access_token"],
        "refresh_token": body["refresh_token"],
        "token_type": body.get("token_type", "Bearer"),
        "expires_at": now + float(body.get("expires_in") or 1800),
    }


def exchange_code(settings: XeroSettings, *, code: str, redirect_uri: str) -> dict[str, Any]:
    body = _token_request(
        settings,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
    )
    return credentials(body)


def refresh(settings: XeroSettings, refresh_token: str) -> dict[str, Any]:
    """New tokens; the refresh token rotates, so the caller must store them before use."""
    body = _token_request(settings, {"grant_type": "refresh_token", "refresh_token": refresh_token})
    return credentials(body)


def revoke(settings: XeroSettings, refresh_token: str) -> None:
    """End the grant (every organisation it covered) at Xero."""
    response = _post(settings, settings.revoke_url, {"token": refresh_token})
    if response.status_code != 200:
        raise OAuthError(
            f"Xero's revocation endpoint answered HTTP {response.status_code}.",
            permanent=response.status_code < 500,
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
        ) from exc


def list_organisations(settings: XeroSettings, access_token: str) -> list[Organisation]:
    """The organisations this grant may reach (``GET /connections``)."""
    response = _api(settings, "GET", settings.connections_url, access_token)
    if response.status_code != 200:
        raise OAuthError(
            f"Xero's connections endpoint answered HTTP {response.status_code}.",
            permanent=response.status_code in (401, 403),
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
        )

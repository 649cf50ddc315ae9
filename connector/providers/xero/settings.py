"""Xero's addresses, keys and limits, read once from the app's configuration.

Every address is overridable (``XERO_*_URL``) so the tests and the benchmark can point the
connector at a fake Xero; the defaults are Xero's public ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.config import Setting

DEFAULT_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
DEFAULT_TOKEN_URL = "https://identity.xero.com/connect/token"
DEFAULT_REVOKE_URL = "https://identity.xero.com/connect/revocation"
DEFAULT_CONNECTIONS_URL = "https://api.xero.com/connections"
DEFAULT_API_BASE_URL = "https://api.xero.com/api.xro/2.0"
DEFAULT_APP_BASE_URL = "https://go.xero.com"
# Apps created since March 2026 get the granular scopes only; an older app may still be set to
# "offline_access accounting.transactions accounting.contacts accounting.settings.read".
DEFAULT_SCOPES = "offline_access accounting.invoices accounting.contacts accounting.settings.read"
CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_CACHE_SECONDS = 3600.0
DEFAULT_ACCOUNT_CODE = "200"  # "Sales" in Xero's default chart of accounts
# Xero allows 60 calls a minute and 5,000 a day per organisation; a small margin absorbs clock
# skew between workers and the calls an admin's own tools make.
DEFAULT_PER_MINUTE = 58
DEFAULT_PER_DAY = 4900


SETTINGS: tuple[Setting, ...] = (
    Setting("XERO_CLIENT_ID", None, "Xero app client id (developer portal, My Apps)."),
    Setting("XERO_CLIENT_SECRET", None, "Xero app client secret.", secret=True),
    Setting(
        "XERO_SCOPES",
        DEFAULT_SCOPES,
        "OAuth scopes asked at connect (apps created before March 2026 may use "
        "`accounting.transactions` instead of `accounting.invoices`).",
    ),
    Setting("XERO_AUTHORIZE_URL", DEFAULT_AUTHORIZE_URL, "Xero's OAuth consent screen."),
    Setting("XERO_TOKEN_URL", DEFAULT_TOKEN_URL, "Xero's token endpoint (exchange, refresh)."),
    Setting("XERO_REVOKE_URL", DEFAULT_REVOKE_URL, "Xero's token revocation endpoint."),
    Setting(
        "XERO_CONNECTIONS_URL",
        DEFAULT_CONNECTIONS_URL,
        "Xero's connections endpoint (the organisations a consent covers; disconnect).",
    ),
    Setting("XERO_API_BASE_URL", DEFAULT_API_BASE_URL, "Xero Accounting API base."),
    Setting("XERO_APP_BASE_URL", DEFAULT_APP_BASE_URL, "Base of invoice deep links into Xero."),
    Setting(
        "XERO_TIMEOUT_SECONDS",
        str(int(DEFAULT_READ_TIMEOUT)),
        "Read timeout of one Xero call; a timed-out create is looked up, never repeated blind.",
    ),
    Setting(
        "XERO_CACHE_SECONDS",
        str(int(DEFAULT_CACHE_SECONDS)),
        "How long a Xero contact's currency and status and the organisation's currencies are "
        "reused (a draft costs one call); a refused invoice drops them at once.",
    ),
    Setting(
        "XERO_REQUESTS_PER_MINUTE",
        str(DEFAULT_PER_MINUTE),
        "Calls a minute per Xero organisation, sent evenly and shared by every process (Xero "
        "allows 60; also 5 at once, always enforced).",
    ),
    Setting(
        "XERO_REQUESTS_PER_DAY",
        str(DEFAULT_PER_DAY),
        "Calls a day per Xero organisation (Xero allows 5,000); spent as a burst budget that "
        "refills evenly.",
    ),
    Setting(
        "XERO_WEBHOOK_KEY",
        None,
        "The Xero app's webhook key(s), comma-separated while rotating, for "
        "`PUBLIC_BASE_URL/webhooks/xero` (status sync; see docs/xero.md). Unset: events are "
        "refused (401) and only the reconcile job updates invoice states.",
        secret=True,
    ),
)

# Connecting Xero (OAuth) needs both: without them the
# Connections page offers no Connect button and names these instead.
CONNECT_SETTINGS: tuple[str, ...] = ("XERO_CLIENT_ID", "XERO_CLIENT_SECRET")


class XeroConfigError(ValueError):
    """The deployment's Xero settings are missing or wrong (an operator must fix them)."""


@dataclass(frozen=True)
class XeroSettings:
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    revoke_url: str
    connections_url: str
    api_base_url: str
    app_base_url: str
    scopes: str
    read_timeout: float
    cache_seconds: float
    per_minute: int = DEFAULT_PER_MINUTE
    per_day: int = DEFAULT_PER_DAY

    @property
    def timeout(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self.read_timeout)


def _number(config: Mapping[str, Any], name: str, default: float) -> float:
    raw = config.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise XeroConfigError(f"{name} must be a number, not {raw!r}.") from None
    if value < 0:
        raise XeroConfigError(f"{name} must not be negative.")
    return value


def settings_from_config(config: Mapping[str, Any], *, require_keys: bool = True) -> XeroSettings:
    client_id = str(config.get("XERO_CLIENT_ID") or "")
    client_secret = str(config.get("XERO_CLIENT_SECRET") or "")
    if require_keys and not (client_id and client_secret):
        raise XeroConfigError(
            "Xero is not configured: set XERO_CLIENT_ID and XERO_CLIENT_SECRET (Xero developer "
            "portal, My Apps, Configuration)."
        )

    def url(name: str, default: str) -> str:
        return str(config.get(name) or default).rstrip("/")

    return XeroSettings(
        client_id=client_id,
        client_secret=client_secret,
        authorize_url=url("XERO_AUTHORIZE_URL", DEFAULT_AUTHORIZE_URL),
        token_url=url("XERO_TOKEN_URL", DEFAULT_TOKEN_URL),
        revoke_url=url("XERO_REVOKE_URL", DEFAULT_REVOKE_URL),
        connections_url=url("XERO_CONNECTIONS_URL", DEFAULT_CONNECTIONS_URL),
        api_base_url=url("XERO_API_BASE_URL", DEFAULT_API_BASE_URL),
        app_base_url=url("XERO_APP_BASE_URL", DEFAULT_APP_BASE_URL),
        scopes=" ".join(str(config.get("XERO_SCOPES") or DEFAULT_SCOPES).split()),
        read_timeout=_number(config, "XERO_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT),
        cache_seconds=_number(config, "XERO_CACHE_SECONDS", DEFAULT_CACHE_SECONDS),
        per_minute=max(1, int(_number(config, "XERO_REQUESTS_PER_MINUTE", DEFAULT_PER_MINUTE))),
        per_day=max(1, int(_number(config, "XERO_REQUESTS_PER_DAY", DEFAULT_PER_DAY))),
    )

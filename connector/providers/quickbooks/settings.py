"""The environment variables QuickBooks Online reads (its registry line points here; the app factory
passes them to ``connector.config.load_config`` and the README's table lists them)."""

from __future__ import annotations

from connector.config import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting("QUICKBOOKS_CLIENT_ID", None, "Intuit app client id (Keys & credentials)."),
    Setting("QUICKBOOKS_CLIENT_SECRET", None, "Intuit app client secret.", secret=True),
    Setting("QUICKBOOKS_ENVIRONMENT", "sandbox", "`sandbox` or `production` (exactly)."),
    Setting(
        "QUICKBOOKS_AUTH_URL",
        None,
        "Intuit authorize URL; default `https://appcenter.intuit.com/connect/oauth2`.",
    ),
    Setting(
        "QUICKBOOKS_TOKEN_URL",
        None,
        "Intuit token URL; default `https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer`.",
    ),
    Setting(
        "QUICKBOOKS_REVOKE_URL",
        None,
        "Intuit revoke URL; default `https://developer.api.intuit.com/v2/oauth2/tokens/revoke`.",
    ),
    Setting(
        "QUICKBOOKS_API_BASE_URL",
        None,
        "Accounting API base; default `https://sandbox-quickbooks.api.intuit.com` (sandbox) or "
        "`https://quickbooks.api.intuit.com` (production).",
    ),
    Setting(
        "QUICKBOOKS_APP_BASE_URL",
        None,
        "Base of invoice deep links; default `https://app.sandbox.qbo.intuit.com` (sandbox) or "
        "`https://app.qbo.intuit.com` (production).",
    ),
    Setting(
        "QUICKBOOKS_TIMEOUT_SECONDS",
        "60",
        "Read timeout of each QuickBooks/Intuit request (the connect timeout is 5 s).",
    ),
    Setting(
        "QUICKBOOKS_FIND_LOOKBACK_DAYS",
        "60",
        "How far back (by creation time) a draft whose create outcome was unknown is searched.",
    ),
    Setting(
        "QUICKBOOKS_CACHE_SECONDS",
        "3600",
        "How long a QuickBooks customer's currency and terms and the service item id are reused "
        "before they are read again (so a draft costs one request); a 6xxx refusal of an invoice "
        "drops them at once. `0` reads them for every draft.",
    ),
    Setting(
        "QBO_WEBHOOK_VERIFIER_TOKEN",
        None,
        "The Intuit app's webhook verifier token(s), comma-separated while rotating, for "
        "`PUBLIC_BASE_URL/webhooks/quickbooks` (status sync; see docs/quickbooks.md). Unset: "
        "notifications are refused and only the reconcile job updates invoice states.",
        secret=True,
    ),
)

# Connecting QuickBooks (OAuth with Intuit) needs both: without them the
# Connections page offers no Connect button and names these instead.
CONNECT_SETTINGS: tuple[str, ...] = ("QUICKBOOKS_CLIENT_ID", "QUICKBOOKS_CLIENT_SECRET")

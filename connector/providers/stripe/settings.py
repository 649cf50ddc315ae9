"""The environment variables Stripe reads (its registry line points here; the app factory
passes them to ``connector.config.load_config`` and the README's table lists them)."""

from __future__ import annotations

from connector.config import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "STRIPE_CONNECT_CLIENT_ID",
        None,
        "Stripe Connect OAuth client id (`ca_...`), only for hosted deployments using Connect.",
    ),
    Setting(
        "STRIPE_PLATFORM_SECRET_KEY",
        None,
        "The platform's secret key, for Connect OAuth.",
        secret=True,
    ),
    Setting(
        "STRIPE_API_BASE_URL",
        "https://api.stripe.com",
        "Stripe API address (override only for tests or a local fake).",
    ),
    Setting(
        "STRIPE_CONNECT_BASE_URL",
        "https://connect.stripe.com",
        "Stripe Connect OAuth address (override only for tests or a local fake).",
    ),
    Setting(
        "STRIPE_TIMEOUT_SECONDS",
        "30",
        "Read timeout of one Stripe call; a timed-out create is reconciled, never repeated blind.",
    ),
    Setting(
        "STRIPE_WEBHOOK_SECRET",
        None,
        "Signing secret(s) (`whsec_...`, comma-separated while rolling) of the Stripe webhook "
        "endpoint `PUBLIC_BASE_URL/webhooks/stripe` (status sync for Connect or one account; "
        "key-connected workspaces save their own endpoint's secret on the Connections page; see "
        "docs/stripe.md). Unset: that endpoint refuses events.",
        secret=True,
    ),
)

# Stripe Connect (OAuth) needs both (a pasted restricted key needs neither): without them the
# Connections page offers no "connect with Stripe Connect" link and names these instead.
CONNECT_SETTINGS: tuple[str, ...] = ("STRIPE_CONNECT_CLIENT_ID", "STRIPE_PLATFORM_SECRET_KEY")

"""Stripe: draft invoices (auto_advance off) in the workspace's Stripe account.

The folder, by what each file holds: ``client.py`` (every API call: the SDK's client, the shared
limiter, errors translated), ``payloads.py`` (invoice and line parameters, pure), ``status.py``
(Stripe's invoice states as ours), ``customers.py``, ``finding.py`` (an unknown outcome looked
up), ``periods.py`` (lines appended to / removed from a period's draft), ``provider.py`` (the
provider and ``create``), ``connect.py`` (connect-time calls: key check, Connect OAuth).
"""

from __future__ import annotations

from connector.providers.stripe.client import (
    CONNECT_TIMEOUT_SECONDS,
    DASHBOARD_URL,
    DEFAULT_API_BASE_URL,
    DEFAULT_CONNECT_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
    META_CURRENCIES,
    META_PENDING,
    RATE_LIMITS,
    STRIPE_API_VERSION,
)
from connector.providers.stripe.errors import DEFAULT_RETRY_AFTER
from connector.providers.stripe.payloads import (
    DEFAULT_DAYS_UNTIL_DUE,
    LINES_PER_CALL,
    MAX_DESCRIPTION,
    MAX_INVOICE_LINES,
    chunks,
    invoice_params,
    line_description,
    line_params,
)
from connector.providers.stripe.provider import StripeProvider, create
from connector.providers.stripe.status import invoice_status

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DASHBOARD_URL",
    "DEFAULT_API_BASE_URL",
    "DEFAULT_CONNECT_BASE_URL",
    "DEFAULT_DAYS_UNTIL_DUE",
    "DEFAULT_RETRY_AFTER",
    "DEFAULT_TIMEOUT_SECONDS",
    "LINES_PER_CALL",
    "MAX_DESCRIPTION",
    "MAX_INVOICE_LINES",
    "META_CURRENCIES",
    "META_PENDING",
    "RATE_LIMITS",
    "STRIPE_API_VERSION",
    "StripeProvider",
    "chunks",
    "create",
    "invoice_params",
    "invoice_status",
    "line_description",
    "line_params",
]

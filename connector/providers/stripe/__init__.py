"""Stripe: draft invoices (auto_advance off) in the workspace's Stripe account.

The folder, by what each file holds: ``client.py`` (every API call: the SDK's client, the shared
limiter, errors translated), ``payloads.py`` (invoice and line parameters, pure), ``status.py``
(Stripe's invoice states as ours), ``customers.py``, ``finding.py`` (an unknown outcome looked
up), ``periods.py`` (lines appended to / removed from a period's draft), ``provider.py`` (the
provider and ``create``), ``connect.py`` (connect-time calls: key check, Connect OAuth).
"""

from __future__ import annotations

from connector.providers.stripe.client import (
    DEFAULT_CONNECT_BASE_URL,
    META_CURRENCIES,
    META_PENDING,
    RATE_LIMITS,
    STRIPE_API_VERSION,
)
from connector.providers.stripe.payloads import line_description
from connector.providers.stripe.provider import StripeProvider, create
from connector.providers.stripe.status import invoice_status

__all__ = [
    "DEFAULT_CONNECT_BASE_URL",
    "META_CURRENCIES",
    "META_PENDING",
    "RATE_LIMITS",
    "STRIPE_API_VERSION",
    "StripeProvider",
    "create",
    "invoice_status",
    "line_description",
]

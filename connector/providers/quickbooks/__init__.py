"""QuickBooks Online: unsent invoices (QuickBooks has no draft state), marked for review.

The folder, by what each file holds: ``oauth.py`` (Intuit's OAuth 2.0 settings and calls),
``client.py`` (every Accounting API call: tokens, the shared limiter, errors classified),
``payloads.py`` (the Invoice and Customer JSON and the query language, pure), ``status.py``
(QuickBooks' invoice states as ours), ``customers.py`` (customers, terms, the service item, the
read cache), ``periods.py`` (lines appended to / removed from the unsent invoice),
``provider.py`` (the provider and ``create``).
"""

from __future__ import annotations

from connector.providers.quickbooks.payloads import (
    build_customer,
    build_invoice,
    compact,
    has_marker,
    line_tag,
    marker,
    number,
    private_note,
    quote,
    request_id,
    select,
)
from connector.providers.quickbooks.provider import (
    DEFAULT_CACHE_SECONDS,
    DEFAULT_LOOKBACK_DAYS,
    FIND_PAGE_SIZE,
    QuickBooksProvider,
    create,
)
from connector.providers.quickbooks.status import invoice_status

__all__ = [
    "DEFAULT_CACHE_SECONDS",
    "DEFAULT_LOOKBACK_DAYS",
    "FIND_PAGE_SIZE",
    "QuickBooksProvider",
    "build_customer",
    "build_invoice",
    "compact",
    "create",
    "has_marker",
    "invoice_status",
    "line_tag",
    "marker",
    "number",
    "private_note",
    "quote",
    "request_id",
    "select",
]

"""QuickBooks Online: unsent invoices (QuickBooks has no draft state), marked for review.

The folder, by what each file holds: ``oauth.py`` (Intuit's OAuth 2.0 settings and calls),
``client.py`` (every Accounting API call: tokens, the shared limiter, errors classified),
``payloads.py`` (the Invoice and Customer JSON and the query language, pure), ``status.py``
(QuickBooks' invoice states as ours), ``customers.py`` (customers, terms, the service item, the
read cache), ``periods.py`` (lines appended to / removed from the unsent invoice),
``provider.py`` (the provider and ``create``).
"""

from __future__ import annotations

from connector.providers.quickbooks.customers import DEFAULT_SERVICE_ITEM_NAME, FILL_WAIT_SECONDS
from connector.providers.quickbooks.payloads import (
    MARKER_PREFIX,
    MAX_CUSTOMER_MEMO,
    MAX_DESCRIPTION,
    MAX_DISPLAY_NAME,
    MAX_PRIVATE_NOTE,
    MAX_QUERY_RESULTS,
    MAX_REQUEST_ID,
    build_customer,
    build_invoice,
    build_service_item,
    compact,
    has_line_tag,
    has_marker,
    line_tag,
    marked_note,
    marker,
    note_keys,
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
    DraftHint,
    QuickBooksProvider,
    create,
)
from connector.providers.quickbooks.status import (
    DUPLICATE_NAME_CODE,
    STALE_OBJECT_CODE,
    STALE_REFERENCE_CODES,
    STATES_PER_QUERY,
    invoice_status,
    says_references_changed,
)

__all__ = [
    "DEFAULT_CACHE_SECONDS",
    "DEFAULT_LOOKBACK_DAYS",
    "DEFAULT_SERVICE_ITEM_NAME",
    "DUPLICATE_NAME_CODE",
    "FILL_WAIT_SECONDS",
    "FIND_PAGE_SIZE",
    "MARKER_PREFIX",
    "MAX_CUSTOMER_MEMO",
    "MAX_DESCRIPTION",
    "MAX_DISPLAY_NAME",
    "MAX_PRIVATE_NOTE",
    "MAX_QUERY_RESULTS",
    "MAX_REQUEST_ID",
    "STALE_OBJECT_CODE",
    "STALE_REFERENCE_CODES",
    "STATES_PER_QUERY",
    "DraftHint",
    "QuickBooksProvider",
    "build_customer",
    "build_invoice",
    "build_service_item",
    "compact",
    "create",
    "has_line_tag",
    "has_marker",
    "invoice_status",
    "line_tag",
    "marked_note",
    "marker",
    "note_keys",
    "number",
    "private_note",
    "quote",
    "request_id",
    "says_references_changed",
    "select",
]

"""The JSON API (bearer token per workspace) and its OpenAPI document.

Each module here registers its routes on ``bp`` and declares the OpenAPI paths it serves in a
module-level ``OPENAPI_PATHS`` dict (and shared schemas in ``OPENAPI_SCHEMAS``); ``openapi.py``
merges them, so the document cannot forget a route (``tests/api/test_openapi.py`` checks).
"""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

API_MODULES = (
    "drafts",
    "invoices",
    "preview",
    "openapi",
    "mappings",
    "rates",
    "settings",
    "approvals_api",
    "tokens",
    "customer_settings",
)

from connector.api import (  # noqa: E402, F401  - registers routes
    approvals_api,
    customer_settings,
    drafts,
    invoices,
    mappings,
    openapi,
    preview,
    rates,
    settings,
    tokens,
)

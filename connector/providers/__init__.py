"""Accounting providers: ``base`` (the interface), ``local``, ``quickbooks``, ``stripe``.

Each provider module exposes ``create(workspace_id, store, config) -> AccountingProvider``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from connector.connections.store import DbCredentialStore, secret_box
from connector.providers.base import AccountingProvider, ReconnectNeeded

PROVIDER_NAMES = ("local", "quickbooks", "stripe")
DISPLAY_NAMES = {"local": "Built-in ledger", "quickbooks": "QuickBooks Online", "stripe": "Stripe"}


def build_provider(
    workspace_id: int, provider: str, config: Mapping[str, Any]
) -> AccountingProvider:
    """The provider a workspace bills into, with its stored credentials."""
    if provider not in PROVIDER_NAMES:
        raise ReconnectNeeded(f"unknown accounting provider {provider!r}")
    module = importlib.import_module(f"connector.providers.{provider}")
    if provider == "local":
        return module.create(workspace_id, None, config)

    store = DbCredentialStore(workspace_id, provider, secret_box(config))
    return module.create(workspace_id, store, config)

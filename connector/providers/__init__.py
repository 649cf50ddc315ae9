"""Accounting providers: ``base`` (the interface), ``local``, ``quickbooks``, ``stripe``.

:data:`PROVIDERS` is the one list of them: every form, API enum, CLI choice and console page
reads it. Each provider module exposes ``create(workspace_id, store, config) ->
AccountingProvider``; a new provider is one module plus one :class:`ProviderInfo` line here
(and, if it is external, its connect pages in ``connector/connections/``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector import draft_records as recorded_drafts
from connector.connections.store import DbCredentialStore, secret_box
from connector.providers.base import AccountingProvider, DraftRecords, ReconnectNeeded


@dataclass(frozen=True)
class ProviderInfo:
    key: str  # stored in workspaces.provider, connections.provider, drafts.provider
    display_name: str  # the name shown to people
    # The module whose ``create`` builds it: imported on first use, so an SDK loads only when a
    # workspace bills into that provider.
    module: str
    # An outside account the admin connects (credentials in the store), or built in.
    external: bool
    # The blueprint of its connect pages (``connector/connections/``), None when built in.
    connect_blueprint: str | None = None

    def create(
        self,
        workspace_id: int,
        store: DbCredentialStore | None,
        config: Mapping[str, Any],
        draft_records: DraftRecords | None = None,
    ) -> AccountingProvider:
        module = importlib.import_module(self.module)
        if draft_records is None:
            provider: AccountingProvider = module.create(workspace_id, store, config)
        else:
            provider = module.create(workspace_id, store, config, draft_records=draft_records)
        return provider


PROVIDERS: dict[str, ProviderInfo] = {
    info.key: info
    for info in (
        ProviderInfo("local", "Built-in ledger", "connector.providers.local", external=False),
        ProviderInfo(
            "quickbooks",
            "QuickBooks Online",
            "connector.providers.quickbooks",
            external=True,
            connect_blueprint="quickbooks_connection",
        ),
        ProviderInfo(
            "stripe",
            "Stripe",
            "connector.providers.stripe",
            external=True,
            connect_blueprint="stripe_connection",
        ),
    )
}
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
DISPLAY_NAMES: dict[str, str] = {key: info.display_name for key, info in PROVIDERS.items()}
EXTERNAL_PROVIDERS: tuple[str, ...] = tuple(k for k, info in PROVIDERS.items() if info.external)


def build_provider(
    workspace_id: int, provider: str, config: Mapping[str, Any]
) -> AccountingProvider:
    """The provider a workspace bills into, with its stored credentials."""
    info = PROVIDERS.get(provider)
    if info is None:
        raise ReconnectNeeded(f"unknown accounting provider {provider!r}")
    if not info.external:
        return info.create(workspace_id, None, config)
    store = DbCredentialStore(workspace_id, provider, secret_box(config))
    return info.create(workspace_id, store, config, recorded_drafts.draft_records(workspace_id))

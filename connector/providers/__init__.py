"""Accounting providers: ``base`` (the interface), ``local``, ``quickbooks``, ``stripe``, ``xero``.

:data:`PROVIDERS` is the one list of them: every form, API enum, CLI choice, console page and
the app's wiring reads it. A provider is its module (or folder, like ``xero/``) plus one
:class:`ProviderInfo` line here: what it can do (:class:`Capabilities`, checked before an
optional ability is offered or used, never found out by an exception), its card on the
Connections page, and the module whose ``setup(app)`` plugs in its connect pages and its
status-event receiver. Nothing outside a provider's module or folder names it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector import draft_records as recorded_drafts
from connector.config import Setting
from connector.connections.store import DbCredentialStore, secret_box
from connector.providers.base import AccountingProvider, DraftRecords, ReconnectNeeded


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do, declared up front (Sentry's ``features``)."""

    # A real draft state finance reviews in (Xero DRAFT, Stripe draft); QuickBooks has none: its
    # "drafts" are unsent invoices already counted as receivables.
    draft_state: bool = False
    append_lines: bool = False  # per_period: lines added to an open draft
    remove_lines: bool = False  # per_period: a withdrawn approval's lines taken off
    status_events: bool = False  # the provider tells us (webhooks) what finance did
    multicurrency: bool = True  # customers billed in other currencies than the home one
    quantity_decimals: int | None = None  # None: no quantity column (amount-only lines)
    price_decimals: int | None = None

    @property
    def per_period(self) -> bool:
        """One invoice per customer and period needs both halves."""
        return self.append_lines and self.remove_lines


@dataclass(frozen=True)
class ProviderInfo:
    key: str  # stored in workspaces.provider, connections.provider, drafts.provider
    display_name: str  # the name shown to people
    # The module whose ``create`` builds it: imported on first use, so an SDK loads only when a
    # workspace bills into that provider.
    module: str
    # An outside account the admin connects (credentials in the store), or built in.
    external: bool
    capabilities: Capabilities = field(default_factory=Capabilities)
    # The module whose ``setup(app)`` registers its connect pages and status-event receiver.
    web: str | None = None
    # Its card on the Connections page (a template found by the app's loaders).
    card_template: str | None = None
    # Where "Reconnect" goes, formatted with the workspace id.
    reconnect_url: str = "/workspaces/{workspace_id}/connections/{key}/connect"
    # The header carrying its status events' signature (kept with each stored event).
    signature_header: str | None = None
    # The blueprint of its connect pages, None when built in.
    connect_blueprint: str | None = None
    # How people call one set of its books ("QuickBooks company", "Xero organisation").
    books_noun: str | None = None
    # The module declaring its environment variables (``SETTINGS``: ``connector.config.Setting``)
    # and, as ``CONNECT_SETTINGS``, the names of those its connect flow (OAuth) cannot work without.
    settings: str | None = None

    def reconnect_link(self, workspace_id: int) -> str:
        return self.reconnect_url.format(workspace_id=workspace_id, key=self.key)

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
        ProviderInfo(
            "local",
            "Built-in ledger",
            "connector.providers.local.provider",
            external=False,
            capabilities=Capabilities(
                draft_state=True,
                append_lines=True,
                remove_lines=True,
                quantity_decimals=7,
                price_decimals=7,
            ),
        ),
        ProviderInfo(
            "quickbooks",
            "QuickBooks Online",
            "connector.providers.quickbooks.provider",
            external=True,
            capabilities=Capabilities(
                append_lines=True,
                remove_lines=True,
                status_events=True,
                quantity_decimals=7,
                price_decimals=7,
            ),
            connect_blueprint="quickbooks_connection",
            books_noun="QuickBooks company",
            settings="connector.providers.quickbooks.settings",
            web="connector.providers.quickbooks.web.setup",
            card_template="quickbooks/card.html",
            signature_header="intuit-signature",
        ),
        ProviderInfo(
            "stripe",
            "Stripe",
            "connector.providers.stripe.provider",
            external=True,
            capabilities=Capabilities(
                draft_state=True,
                append_lines=True,
                remove_lines=True,
                status_events=True,
                price_decimals=12,
            ),
            connect_blueprint="stripe_connection",
            books_noun="Stripe account",
            settings="connector.providers.stripe.settings",
            web="connector.providers.stripe.web.setup",
            card_template="stripe/card.html",
            reconnect_url="/workspaces/{workspace_id}/connections#stripe-key",
            signature_header="stripe-signature",
        ),
        ProviderInfo(
            "xero",
            "Xero",
            "connector.providers.xero.provider",
            external=True,
            capabilities=Capabilities(
                draft_state=True,
                append_lines=True,
                remove_lines=True,
                status_events=True,
                quantity_decimals=4,
                price_decimals=4,
            ),
            connect_blueprint="xero_connection",
            books_noun="Xero organisation",
            web="connector.providers.xero.web.setup",
            settings="connector.providers.xero.settings",
            card_template="xero/card.html",
            signature_header="x-xero-signature",
        ),
    )
}
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
DISPLAY_NAMES: dict[str, str] = {key: info.display_name for key, info in PROVIDERS.items()}
EXTERNAL_PROVIDERS: tuple[str, ...] = tuple(k for k, info in PROVIDERS.items() if info.external)


def declared_settings() -> tuple[Setting, ...]:
    """The environment variables the providers declare in their own folders (``settings``)."""
    found: list[Setting] = []
    for info in PROVIDERS.values():
        if info.settings:
            found += importlib.import_module(info.settings).SETTINGS
    return tuple(found)


def connect_settings(provider: str) -> tuple[Setting, ...]:
    """The environment variables the provider's connect flow needs (its ``CONNECT_SETTINGS``)."""
    info = PROVIDERS.get(provider)
    if info is None or not info.settings:
        return ()
    module = importlib.import_module(info.settings)
    needed = tuple(getattr(module, "CONNECT_SETTINGS", ()))
    declared = {setting.name: setting for setting in module.SETTINGS}
    return tuple(declared[name] for name in needed)


def missing_connect_settings(provider: str, config: Mapping[str, Any]) -> tuple[Setting, ...]:
    """Those of :func:`connect_settings` this server lacks: none means it can connect."""
    return tuple(s for s in connect_settings(provider) if not config.get(s.name))


def capabilities(provider: str) -> Capabilities:
    info = PROVIDERS.get(provider)
    return info.capabilities if info is not None else Capabilities()


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

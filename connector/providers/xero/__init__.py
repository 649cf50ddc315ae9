"""Xero: DRAFT sales invoices in one Xero organisation per workspace.

The folder, by what each file holds:

* ``settings.py``: addresses, keys, scopes and timeouts from the configuration (``XERO_*``)
* ``oauth.py``: the authorization code flow, token refresh and revocation, the organisations
  (``/connections``) a grant reaches
* ``client.py``: every Accounting API call (tenant header, Idempotency-Key, shared limits, token
  refresh, errors classified)
* ``errors.py``: Xero's error answers in plain words
* ``payloads.py``: the Invoice and Contact JSON (pure; checked against Xero's OpenAPI document)
* ``contacts.py``: contacts and the organisation's currencies, cached
* ``status.py``: Xero's invoice statuses as ours
* ``provider.py``: the :class:`~connector.providers.base.AccountingProvider` itself
* ``tests/``: a stateful fake Xero and the tests at its wire; ``tests/openapi/`` keeps the part
  of Xero's published OpenAPI description the payloads are validated against

See docs/xero.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.providers.base import (
    CredentialStore,
    DraftRecords,
    RateLimiter,
    ReconnectNeeded,
)


def create(
    workspace_id: int,
    store: CredentialStore,
    config: Mapping[str, Any],
    *,
    limiter: RateLimiter | None = None,
    draft_records: DraftRecords | None = None,
) -> Any:
    """The Xero provider of a workspace (``build_provider`` calls this)."""
    from connector import ratelimit
    from connector.providers.xero.client import XeroClient
    from connector.providers.xero.provider import XeroProvider
    from connector.providers.xero.settings import XeroConfigError, settings_from_config

    tenant_id = store.account_id
    if not tenant_id:
        raise ReconnectNeeded("Xero is not connected for this workspace.")
    try:
        settings = settings_from_config(config)
    except XeroConfigError as exc:
        # A deployment problem, not the admin's connection: jobs wait until it is fixed.
        raise ReconnectNeeded(f"Xero configuration problem: {exc}") from None
    client = XeroClient(
        settings, store, str(tenant_id), limiter=limiter or ratelimit.shared_limiter()
    )
    return XeroProvider(workspace_id, store, settings, client, draft_records=draft_records)

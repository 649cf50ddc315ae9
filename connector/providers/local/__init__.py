"""The built-in ledger: drafts kept in this service's own tables (``local_invoices``), so the
whole flow works without an accounting account. ``provider.py`` is the provider and ``create``;
its console pages (the ledger invoice) are ``connector/admin/ledger.py``."""

from __future__ import annotations

from connector.providers.local.provider import LocalProvider, create

__all__ = ["LocalProvider", "create"]

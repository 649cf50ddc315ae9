"""Which books a workspace bills into: the built-in ledger, one QuickBooks company, one Stripe
account (in test or live mode).

A customer id means something only in the books it came from: QuickBooks customer "6" of
company A is another business than customer "6" of company B, or the ledger's "#6". So every
mapping, customer setting and invoice carries the key of its books (:func:`books_key`), and the
pipeline uses only what belongs to the books the workspace reaches *now* (:func:`current`).
Reconnecting to the same account gives the same key, so everything stays; switching to other
books leaves the old rows as history, and switching back brings them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.models import AccountingBooks, Connection, utcnow

LOCAL: Final = "local"
# How people call one set of books of a provider ("QuickBooks company Acme"); a new provider
# adds its word here (e.g. "Xero organisation").
_NOUNS: Final = {"quickbooks": "QuickBooks company", "stripe": "Stripe account"}


def books_key(provider: str, account_id: str | None, environment: str | None = None) -> str:
    """``local`` | ``<provider>:<environment>:<account id>`` (e.g. ``quickbooks:sandbox:9130``).

    The environment is part of it: a Stripe account's test-mode customers are not its live ones.
    """
    if provider == LOCAL:
        return LOCAL
    return f"{provider}:{environment or ''}:{account_id or ''}"


def split_key(key: str) -> tuple[str, str | None, str | None]:
    """(provider, environment, account id) of a key made by :func:`books_key`."""
    if key == LOCAL:
        return LOCAL, None, None
    provider, _, rest = key.partition(":")
    environment, _, account_id = rest.partition(":")
    return provider, environment or None, account_id or None


@dataclass(frozen=True)
class Books:
    key: str
    provider: str
    account_id: str | None = None
    environment: str | None = None
    name: str | None = None

    def describe(self) -> str:
        return describe(self.provider, self.account_id, self.environment, self.name)


def describe(
    provider: str, account_id: str | None, environment: str | None, name: str | None
) -> str:
    """Plain words for one set of books: "QuickBooks company Acme Sandbox", "the built-in
    ledger", "Stripe account acct_1Q (test mode)"."""
    if provider == LOCAL:
        return "the built-in ledger"
    noun = _NOUNS.get(provider) or f"{provider.capitalize()} account"
    who = name or account_id or "(account not known)"
    text = f"{noun} {who}"
    if provider == "stripe" and environment == "test":
        text += " (test mode)"
    elif provider == "quickbooks" and environment == "sandbox":
        text += " (sandbox)"
    return text


def _connection_name(row: Connection) -> str | None:
    meta = row.meta or {}
    return (
        row.account_name
        or meta.get("company_name")
        or meta.get("account_name")
        or (f"with key {meta['masked_key']}" if meta.get("masked_key") else None)
    )


def of_connection(row: Connection) -> Books:
    """The books a stored connection reaches. A Stripe key that may not read its account has no
    account id: the key's fingerprint stands in (another account's key is other books; a rolled
    key of the same account costs a re-map, never a wrong customer)."""
    meta = row.meta or {}
    account = row.account_id or (
        f"key-{meta['key_fingerprint']}" if meta.get("key_fingerprint") else None
    )
    return Books(
        key=books_key(row.provider, account, row.environment),
        provider=row.provider,
        account_id=account,
        environment=row.environment,
        name=_connection_name(row),
    )


def current(s: Session, workspace_id: int, provider: str) -> Books | None:
    """The books ``provider`` reaches for this workspace now; None when an external provider
    was never connected (nothing can belong to it yet)."""
    if provider == LOCAL:
        return Books(key=LOCAL, provider=LOCAL)
    row = s.scalars(
        select(Connection).where(
            Connection.workspace_id == workspace_id, Connection.provider == provider
        )
    ).one_or_none()
    if row is None or (row.connected_at is None and not row.account_id):
        return None
    return of_connection(row)


def current_key(s: Session, workspace_id: int, provider: str) -> str | None:
    found = current(s, workspace_id, provider)
    return found.key if found else None


def describe_key(s: Session, workspace_id: int, key: str) -> str:
    """Plain words for books by key, with the name they had when last connected."""
    provider, environment, account_id = split_key(key)
    name = s.scalar(
        select(AccountingBooks.name).where(
            AccountingBooks.workspace_id == workspace_id, AccountingBooks.key == key
        )
    )
    return describe(provider, account_id, environment, name)


def remember(s: Session, workspace_id: int, connection: Connection) -> str:
    """Record (or refresh) the books a connection reaches, so they can be named later."""
    found = of_connection(connection)
    row = s.scalars(
        select(AccountingBooks).where(
            AccountingBooks.workspace_id == workspace_id, AccountingBooks.key == found.key
        )
    ).one_or_none()
    if row is None:
        row = AccountingBooks(
            workspace_id=workspace_id,
            key=found.key,
            provider=found.provider,
            account_id=found.account_id,
            environment=found.environment,
        )
        try:
            with s.begin_nested():
                s.add(row)
        except IntegrityError:  # another process recorded them first
            row = s.scalars(
                select(AccountingBooks).where(
                    AccountingBooks.workspace_id == workspace_id, AccountingBooks.key == found.key
                )
            ).one()
    if found.name:
        row.name = found.name[:500]
    row.last_connected_at = utcnow()
    return found.key


def known(s: Session, workspace_id: int) -> dict[str, str]:
    """key -> plain words, for every set of books this workspace connected to."""
    rows: Any = s.scalars(
        select(AccountingBooks).where(AccountingBooks.workspace_id == workspace_id)
    )
    return {r.key: describe(r.provider, r.account_id, r.environment, r.name) for r in rows}

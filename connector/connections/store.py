"""The encrypted, per-workspace credential store handed to providers (see providers.base)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from connector import books, db
from connector.crypto import SecretBox
from connector.locks import advisory_lock
from connector.models import Connection, ConnectionStatus, ProviderCacheEntry, utcnow


def secret_box(config: Mapping[str, Any]) -> SecretBox:
    """The token cipher of this configuration (``TOKEN_ENCRYPTION_KEYS``)."""
    return SecretBox(config["TOKEN_ENCRYPTION_KEYS"])


class DbCredentialStore:
    """Credentials of one (workspace, provider) connection; every write commits at once."""

    def __init__(self, workspace_id: int, provider: str, box: SecretBox):
        self.workspace_id = workspace_id
        self.provider = provider
        self._box = box

    def _row(self, s: Any) -> Connection | None:
        return s.scalars(
            select(Connection).where(
                Connection.workspace_id == self.workspace_id, Connection.provider == self.provider
            )
        ).one_or_none()

    # -- read
    def connection(self) -> Connection | None:
        with db.new_session() as s:
            return self._row(s)

    def load(self) -> dict[str, Any]:
        row = self.connection()
        if row is None or row.credentials_encrypted is None:
            return {}
        return dict(self._box.decrypt_json(row.credentials_encrypted) or {})

    @property
    def account_id(self) -> str | None:
        row = self.connection()
        return row.account_id if row else None

    @property
    def environment(self) -> str | None:
        row = self.connection()
        return row.environment if row else None

    def meta(self) -> dict[str, Any]:
        row = self.connection()
        return dict(row.meta or {}) if row else {}

    # -- write (each in its own committed transaction)
    def save(self, credentials: dict[str, Any]) -> None:
        with db.session_scope() as s:
            row = self._row(s)
            if row is None:
                row = Connection(workspace_id=self.workspace_id, provider=self.provider)
                s.add(row)
            row.credentials_encrypted = self._box.encrypt_json(credentials)
            row.updated_at = utcnow()

    def connect(
        self,
        credentials: dict[str, Any],
        *,
        account_id: str | None,
        environment: str | None,
        account_name: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        with db.session_scope() as s:
            row = self._row(s)
            if row is None:
                row = Connection(workspace_id=self.workspace_id, provider=self.provider)
                s.add(row)
            row.credentials_encrypted = self._box.encrypt_json(credentials)
            row.account_id = account_id
            row.environment = environment
            row.account_name = account_name
            row.status = ConnectionStatus.CONNECTED
            row.last_error = None
            row.meta = dict(meta or {})
            row.connected_at = utcnow()
            # The books it reaches, kept by name: mappings made in them are bound to them.
            s.flush()
            books.remember(s, self.workspace_id, row)

    def update_meta(self, **values: Any) -> None:
        with db.session_scope() as s:
            row = self._row(s)
            if row is None:
                return
            merged = dict(row.meta or {})
            merged.update(values)
            row.meta = merged
            if values.get("company_name") and row.account_id:
                books.remember(s, self.workspace_id, row)  # the company's name, for history

    # -- the provider's read cache (one row per entry, so concurrent writers never clobber)
    def cache_get(self, name: str) -> tuple[dict[str, Any], datetime] | None:
        """The cached value named ``name`` and when it was read from the provider, if any."""
        with db.new_session() as s:
            row = s.scalars(
                select(ProviderCacheEntry).where(
                    ProviderCacheEntry.workspace_id == self.workspace_id,
                    ProviderCacheEntry.provider == self.provider,
                    ProviderCacheEntry.name == name,
                )
            ).one_or_none()
            return (dict(row.value or {}), row.fetched_at) if row else None

    def cache_put(
        self, name: str, value: dict[str, Any], fetched_at: datetime | None = None
    ) -> None:
        for _ in (1, 2):
            try:
                with db.session_scope() as s:
                    row = s.scalars(
                        select(ProviderCacheEntry).where(
                            ProviderCacheEntry.workspace_id == self.workspace_id,
                            ProviderCacheEntry.provider == self.provider,
                            ProviderCacheEntry.name == name,
                        )
                    ).one_or_none()
                    if row is None:
                        row = ProviderCacheEntry(
                            workspace_id=self.workspace_id, provider=self.provider, name=name
                        )
                        s.add(row)
                    row.value = dict(value)
                    row.fetched_at = fetched_at or utcnow()
                return
            except IntegrityError:
                continue  # another process inserted it first: update that row instead

    def cache_drop(self, prefix: str = "") -> None:
        """Forget every cached entry whose name starts with ``prefix`` (all of them by default)."""
        with db.session_scope() as s:
            s.execute(
                delete(ProviderCacheEntry).where(
                    ProviderCacheEntry.workspace_id == self.workspace_id,
                    ProviderCacheEntry.provider == self.provider,
                    ProviderCacheEntry.name.startswith(prefix, autoescape=True),
                )
            )

    def mark_reconnect_needed(self, reason: str) -> None:
        with db.session_scope() as s:
            row = self._row(s)
            if row is None:
                return
            row.status = ConnectionStatus.RECONNECT_NEEDED
            row.last_error = reason

    def disconnect(self) -> None:
        with db.session_scope() as s:
            row = self._row(s)
            if row is None:
                return
            row.status = ConnectionStatus.DISCONNECTED
            row.credentials_encrypted = None

    def lock(self, name: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        return advisory_lock(
            f"{self.provider}:{self.workspace_id}:{name}",
            ttl=max(60.0, timeout * 2),
            timeout=timeout,
        )

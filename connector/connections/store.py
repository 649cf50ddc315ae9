"""The encrypted, per-workspace credential store handed to providers (see providers.base)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


# A provider reads its connection's account id, environment and meta several times per draft:
# one store (one job) reads them once per SNAPSHOT_SECONDS. Credentials are always read fresh
# (a refresh elsewhere rotates them), and so is anything read under the store's lock.
SNAPSHOT_SECONDS = 5.0
# The provider's read cache (customers) is kept in this process too, for LOCAL_CACHE_SECONDS: a
# worker reads the same few customers for every draft. A drop in another process (the provider
# refused a stale reference) reaches this one within that time; one here, at once.
LOCAL_CACHE_SECONDS = 30.0
_local_cache: dict[tuple[int, str, str], tuple[dict[str, Any], datetime, float]] = {}
_local_cache_guard = threading.Lock()


def forget_local_cache() -> None:
    """Empty this process's copy of the provider read cache (tests: a fresh database)."""
    with _local_cache_guard:
        _local_cache.clear()


class DbCredentialStore:
    """Credentials of one (workspace, provider) connection; every write commits at once."""

    def __init__(self, workspace_id: int, provider: str, box: SecretBox):
        self.workspace_id = workspace_id
        self.provider = provider
        self._box = box
        self._snapshot: tuple[Connection | None, float] | None = None
        self._locked = 0  # inside lock(): every read goes to the database

    def _recent(self) -> Connection | None:
        """The connection row as this store read it less than SNAPSHOT_SECONDS ago."""
        snapshot = self._snapshot
        if snapshot and not self._locked and time.monotonic() - snapshot[1] < SNAPSHOT_SECONDS:
            return snapshot[0]
        row = self.connection()
        self._snapshot = (row, time.monotonic())
        return row

    def _row(self, s: Any) -> Connection | None:
        return s.scalars(
            select(Connection).where(
                Connection.workspace_id == self.workspace_id, Connection.provider == self.provider
            )
        ).one_or_none()

    # -- read
    def connection(self) -> Connection | None:
        with db.autocommit_session() as s:
            return self._row(s)

    def load(self) -> dict[str, Any]:
        row = self.connection()
        if row is None or row.credentials_encrypted is None:
            return {}
        return dict(self._box.decrypt_json(row.credentials_encrypted) or {})

    @property
    def account_id(self) -> str | None:
        row = self._recent()
        return row.account_id if row else None

    @property
    def environment(self) -> str | None:
        row = self._recent()
        return row.environment if row else None

    def meta(self) -> dict[str, Any]:
        row = self._recent()
        return dict(row.meta or {}) if row else {}

    # -- write (each in its own committed transaction)
    def save(self, credentials: dict[str, Any]) -> None:
        self._snapshot = None
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
        self._snapshot = None
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
        self._snapshot = None
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
        key = (self.workspace_id, self.provider, name)
        with _local_cache_guard:
            local = _local_cache.get(key)
        if local and not self._locked and time.monotonic() - local[2] < LOCAL_CACHE_SECONDS:
            return dict(local[0]), local[1]
        with db.autocommit_session() as s:
            row = s.scalars(
                select(ProviderCacheEntry).where(
                    ProviderCacheEntry.workspace_id == self.workspace_id,
                    ProviderCacheEntry.provider == self.provider,
                    ProviderCacheEntry.name == name,
                )
            ).one_or_none()
            if row is None:
                return None
            value, fetched_at = dict(row.value or {}), row.fetched_at
        self._keep_local(name, value, fetched_at)
        return dict(value), fetched_at

    def _keep_local(self, name: str, value: dict[str, Any], fetched_at: datetime) -> None:
        with _local_cache_guard:
            _local_cache[(self.workspace_id, self.provider, name)] = (
                dict(value),
                fetched_at,
                time.monotonic(),
            )

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
                self._keep_local(name, value, row.fetched_at)
                return
            except IntegrityError:
                continue  # another process inserted it first: update that row instead

    def cache_drop(self, prefix: str = "") -> None:
        """Forget every cached entry whose name starts with ``prefix`` (all of them by default)."""
        with _local_cache_guard:
            for key in [k for k in _local_cache if k[:2] == (self.workspace_id, self.provider)]:
                if key[2].startswith(prefix):
                    del _local_cache[key]
        with db.session_scope() as s:
            s.execute(
                delete(ProviderCacheEntry).where(
                    ProviderCacheEntry.workspace_id == self.workspace_id,
                    ProviderCacheEntry.provider == self.provider,
                    ProviderCacheEntry.name.startswith(prefix, autoescape=True),
                )
            )

    def mark_reconnect_needed(self, reason: str) -> None:
        self._snapshot = None
        with db.session_scope() as s:
            row = self._row(s)
            if row is None:
                return
            row.status = ConnectionStatus.RECONNECT_NEEDED
            row.last_error = reason

    def disconnect(self) -> None:
        self._snapshot = None
        with db.session_scope() as s:
            row = self._row(s)
            if row is None:
                return
            row.status = ConnectionStatus.DISCONNECTED
            row.credentials_encrypted = None

    @contextmanager
    def lock(self, name: str, timeout: float = 30.0) -> Iterator[None]:
        """One holder at a time across processes; what is read under it is read fresh (another
        holder may just have written it)."""
        with advisory_lock(
            f"{self.provider}:{self.workspace_id}:{name}",
            ttl=max(60.0, timeout * 2),
            timeout=timeout,
        ):
            self._locked += 1
            try:
                yield
            finally:
                self._locked -= 1

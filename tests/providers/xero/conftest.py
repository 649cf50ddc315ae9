"""Fixtures of the Xero tests: a fake Xero behind the mocked wire, and a connected workspace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from sqlalchemy import select

from connector import db
from connector.books import books_key
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Connection, CustomerMapping, Workspace
from connector.providers import build_provider
from tests.browser.conftest import live_server, page  # noqa: F401 - the browser fixtures
from tests.providers.xero.fake_xero import CONFIG, FakeXero


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake(rsps: Any) -> FakeXero:
    return FakeXero().install(rsps)


@pytest.fixture
def xero_app(app: Any) -> Any:
    app.config.update({k: v for k, v in CONFIG.items() if k != "PUBLIC_BASE_URL"})
    return app


def connect_store(workspace_id: int, app: Any, fake: FakeXero, **meta: Any) -> DbCredentialStore:
    """The workspace connected to the fake's organisation, as a finished consent leaves it."""
    store = DbCredentialStore(workspace_id, "xero", secret_box(app.config))
    store.connect(
        fake.issue_tokens(),
        account_id=fake.tenant,
        environment=None,
        account_name="Tsi Demo (NZ)",
        meta={"account_code": "200", "short_code": "!tsiFk", **meta},
    )
    return store


def map_client(workspace_id: int, tracker_id: str, contact_id: str, name: str, currency: str):
    """Map a tracker client to a contact in the books of the workspace's Xero organisation."""
    with db.session_scope() as s:
        tenant = s.scalar(
            select(Connection.account_id).where(
                Connection.workspace_id == workspace_id, Connection.provider == "xero"
            )
        )
        s.add(
            CustomerMapping(
                workspace_id=workspace_id,
                books=books_key("xero", tenant, None),
                kind="client",
                tracker_id=tracker_id,
                customer_id=contact_id,
                customer_name=name,
                customer_currency=currency,
            )
        )


@pytest.fixture
def connected(xero_app: Any, workspace: Any, fake: FakeXero) -> DbCredentialStore:
    """The workspace bills into the fake Xero organisation."""
    store = connect_store(workspace.id, xero_app, fake)
    with db.session_scope() as s:
        s.get(Workspace, workspace.id).provider = "xero"
    return store


@pytest.fixture
def provider(connected: DbCredentialStore, workspace: Any, xero_app: Any) -> Any:
    return build_provider(workspace.id, "xero", xero_app.config)

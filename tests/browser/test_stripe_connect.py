"""Connecting Stripe through the console in real headless Chromium: paste a restricted test
key, see "Test mode" and the masked key on the connections page, then disconnect.

The key check's HTTP calls to api.stripe.com are answered by ``responses``, which patches
``requests`` for the whole test process, so it also covers the app served from a thread here.
Chromium talks to that server directly; 127.0.0.1 is let through in case anything in-process
calls it with ``requests``. Screenshots go to tests/artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from sqlalchemy import select

from connector import db
from connector.models import Connection, ConnectionStatus, Workspace
from tests.app_fixtures import load_fixture
from tests.browser.conftest import shot, sign_in

pytestmark = pytest.mark.browser

STRIPE_API = "https://api.stripe.com"
RK = "rk_test_51BrowserRestrictedKeyWxYz"
MASKED = "rk_test_…WxYz"


@pytest.fixture
def stripe_api(app: Any) -> Iterator[responses.RequestsMock]:
    # The real default base URL: nothing may leave the machine, so every call must be mocked.
    app.config.pop("STRIPE_API_BASE_URL", None)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_passthru("http://127.0.0.1")
        mock.add(
            responses.GET,
            f"{STRIPE_API}/v1/customers",
            json=load_fixture("stripe", "customer_list__page2.json"),
        )
        mock.add(
            responses.GET,
            f"{STRIPE_API}/v1/invoices",
            json=load_fixture("stripe", "invoice_list__empty.json"),
        )
        mock.add(
            responses.GET,
            f"{STRIPE_API}/v1/account",
            json=load_fixture("stripe", "account__current.json"),
        )
        yield mock


def stripe_connection(workspace_id: int) -> Connection | None:
    with db.new_session() as s:
        return s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == "stripe"
            )
        ).one_or_none()


def test_connect_stripe_with_a_restricted_key_then_disconnect(
    page: Any, workspace: Any, make_admin: Any, stripe_api: responses.RequestsMock
) -> None:
    make_admin(workspace, email="ada@example.com", password="correct horse battery")
    ws = f"/workspaces/{workspace.id}"
    page.goto(f"{ws}/connections")
    sign_in(page, "ada@example.com", "correct horse battery")
    page.wait_for_url(f"**{ws}/connections")
    stripe = page.get_by_role("region", name="Stripe")
    assert "Not connected." in stripe.inner_text()
    shot(page, "stripe-01-not-connected")

    # Paste the key: the app checks it against (mocked) Stripe before storing anything.
    page.get_by_label("Stripe restricted key").fill(RK)
    shot(page, "stripe-02-key-pasted")
    page.get_by_role("button", name="Connect with this key").click()
    page.wait_for_url(f"**{ws}/connections")
    assert page.get_by_role("status").first.inner_text() == "Stripe connected in test mode."
    text = stripe.inner_text()
    assert "Test mode" in text
    assert MASKED in text
    assert RK not in page.content()  # the key itself is never shown again
    assert not page.get_by_label("Stripe restricted key").is_visible()
    shot(page, "stripe-03-connected")

    calls = [(c.request.method, c.request.url.split("?")[0]) for c in stripe_api.calls]
    assert calls == [
        ("GET", f"{STRIPE_API}/v1/customers"),
        ("GET", f"{STRIPE_API}/v1/invoices"),
        ("GET", f"{STRIPE_API}/v1/account"),
    ]
    assert all(c.request.headers["Authorization"] == f"Bearer {RK}" for c in stripe_api.calls)
    row = stripe_connection(workspace.id)
    assert row is not None and row.status == ConnectionStatus.CONNECTED
    assert row.environment == "test" and RK not in (row.credentials_encrypted or "")
    with db.new_session() as s:
        assert s.get(Workspace, workspace.id).provider == "stripe"

    # Disconnect: a pasted key is simply forgotten (no call to Stripe).
    stripe.get_by_role("button", name="Disconnect Stripe").click()
    # A destructive action asks first, saying what follows; nothing changed yet.
    page.wait_for_url(f"**{ws}/connections/stripe/disconnect")
    assert page.get_by_role("heading", name="Disconnect Stripe?").is_visible()
    assert "new approvals wait (nothing is lost)" in page.content()
    shot(page, "stripe-04a-confirm-disconnect")
    page.get_by_role("button", name="Disconnect Stripe").click()
    page.wait_for_url(f"**{ws}/connections")
    assert page.get_by_role("status").first.inner_text() == "Stripe disconnected."
    assert "Not connected." in stripe.inner_text()
    assert MASKED not in stripe.inner_text()
    assert page.get_by_label("Stripe restricted key").is_visible()
    shot(page, "stripe-04-disconnected")
    assert len(stripe_api.calls) == 3
    row = stripe_connection(workspace.id)
    assert row is not None and row.status == ConnectionStatus.DISCONNECTED
    assert row.credentials_encrypted is None

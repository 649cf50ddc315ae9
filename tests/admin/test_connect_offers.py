"""Connections offers only what this server can connect, and names the variables that turn the
rest on; a connect URL that cannot work answers a styled page in plain words (#21 item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from connector.providers import EXTERNAL_PROVIDERS, connect_settings

OAUTH_SETTINGS = (
    "QUICKBOOKS_CLIENT_ID",
    "QUICKBOOKS_CLIENT_SECRET",
    "STRIPE_CONNECT_CLIENT_ID",
    "STRIPE_PLATFORM_SECRET_KEY",
    "XERO_CLIENT_ID",
    "XERO_CLIENT_SECRET",
    "WEBWORK_CLIENT_ID",
    "WEBWORK_CLIENT_SECRET",
)
CONNECT_PATHS = {
    "quickbooks": "/connections/quickbooks/connect",
    "stripe": "/connections/stripe/connect",
    "xero": "/connections/xero/connect",
    "webwork": "/connections/webwork/connect",
}


@pytest.fixture
def unconfigured(app: Any) -> None:
    for name in OAUTH_SETTINGS:
        app.config[name] = None


@pytest.fixture
def configured(app: Any) -> None:
    for name in OAUTH_SETTINGS:
        app.config[name] = f"set-{name.lower()}"


def test_every_external_provider_declares_what_its_connect_needs() -> None:
    for provider in EXTERNAL_PROVIDERS:
        names = [setting.name for setting in connect_settings(provider)]
        assert names, provider
        assert all(setting.meaning for setting in connect_settings(provider))
    assert connect_settings("local") == ()


def test_without_client_ids_no_connect_button_and_the_variables_are_named(
    admin_client: Any, workspace: Any, unconfigured: None
) -> None:
    text = admin_client.get(f"/workspaces/{workspace.id}/connections").get_data(as_text=True)
    for provider, path in CONNECT_PATHS.items():
        assert f"/workspaces/{workspace.id}{path}" not in text, provider
    for name in OAUTH_SETTINGS:
        assert f"<code>{name}</code>" in text, name
    assert "is not set up on this server" in text
    # What works without any server setting is still offered.
    assert 'id="webwork-token"' in text and 'id="stripe-key"' in text


def test_with_client_ids_the_connect_buttons_are_offered(
    admin_client: Any, workspace: Any, configured: None
) -> None:
    text = admin_client.get(f"/workspaces/{workspace.id}/connections").get_data(as_text=True)
    for provider, path in CONNECT_PATHS.items():
        assert f"/workspaces/{workspace.id}{path}" in text, provider
    assert "is not set up on this server" not in text
    assert "off on this server" not in text


@pytest.mark.parametrize("provider", sorted(CONNECT_PATHS))
def test_a_connect_url_this_server_cannot_serve_is_a_styled_page(
    admin_client: Any, workspace: Any, unconfigured: None, provider: str
) -> None:
    response = admin_client.get(f"/workspaces/{workspace.id}{CONNECT_PATHS[provider]}")
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<!doctype html>" in text.lower() and "admin.css" in text  # the console's own page
    assert "not set up" in text
    assert "Back to connections" in text
    assert "_CLIENT_ID</code>" in text  # names what turns it on

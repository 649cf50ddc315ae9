"""Plug Xero into the web app (called through the provider registry by the app factory)."""

from __future__ import annotations

from flask import Flask

from connector.providers.web_kit import WebKit
from connector.providers.xero import events
from connector.providers.xero.web import connect, receiver


def setup(app: Flask, kit: WebKit) -> None:
    app.register_blueprint(connect.bp)
    app.register_blueprint(receiver.bp)
    kit.csrf.exempt(receiver.bp)  # authenticated by x-xero-signature
    kit.allow_public("xero_webhooks.receive")
    kit.register_openapi(receiver.OPENAPI_PATHS)
    # How the core reads which invoices a stored Xero event names.
    kit.register_event_reader(receiver.SOURCE, events.invoice_refs)

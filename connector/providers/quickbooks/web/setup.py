"""Plug QuickBooks into the web app (called through the provider registry by the app factory): its
connect pages, its status-event receiver (authenticated by intuit-signature, not by a session)
and how the core reads which invoices a stored event names."""

from __future__ import annotations

from flask import Flask

from connector.providers.quickbooks import events
from connector.providers.quickbooks.web import connect, receiver
from connector.providers.web_kit import WebKit


def setup(app: Flask, kit: WebKit) -> None:
    app.register_blueprint(connect.bp)
    app.register_blueprint(receiver.bp)
    kit.csrf.exempt(receiver.bp)
    kit.allow_public("quickbooks_webhooks.receive")
    kit.register_openapi(receiver.OPENAPI_PATHS, receiver.OPENAPI_SCHEMAS)
    kit.register_event_reader(receiver.SOURCE, events.invoice_refs)

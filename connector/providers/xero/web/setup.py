"""Plug Xero into the web app (called through the provider registry by the app factory)."""

from __future__ import annotations

from flask import Flask

from connector import auth, status_sync
from connector.providers.xero import events
from connector.providers.xero.web import connect, receiver
from webhooks import provider_receiver


def setup(app: Flask, csrf: object) -> None:
    app.register_blueprint(connect.bp)
    app.register_blueprint(receiver.bp)
    csrf.exempt(receiver.bp)  # type: ignore[attr-defined] - authenticated by x-xero-signature
    auth.allow_public("xero_webhooks.receive")
    provider_receiver.register_openapi(receiver.OPENAPI_PATHS)
    # How the core reads which invoices a stored Xero event names.
    status_sync.register_event_reader(receiver.SOURCE, events.invoice_refs)

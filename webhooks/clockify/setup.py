"""Plug the Clockify source into the app: its card's templates and the core's registry."""

from __future__ import annotations

from flask import Flask

from connector import trackers
from webhooks.clockify import SOURCE, events, fill, normalize, seam
from webhooks.clockify.views import bp


def setup(app: Flask) -> None:
    if "clockify_connection" not in app.blueprints:
        app.register_blueprint(bp)
    trackers.register_source(
        SOURCE,
        display_name="Clockify",
        parse_event=events.parse_event,
        normalize_timesheet=normalize.normalize_timesheet,
        fill_event=fill.fill_event,
        event_kinds=seam.EVENT_KINDS,
        signature=seam.SIGNATURE,
        contract=seam.CONTRACT,
        card=seam.CARD,
        account=seam.ACCOUNT,
        poller=seam.POLLER,
        workspace_id_hint="in Clockify's address bar: app.clockify.me/workspaces/<id>/settings",
    )

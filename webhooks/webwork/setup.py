"""Plug the WebWork source into the app: routes, the core's registry (with its poller and CLI)."""

from __future__ import annotations

from flask import Flask

from connector import trackers
from webhooks.signing import STANDARD_WEBHOOKS
from webhooks.webwork import SOURCE, events, fill, normalize, rates, seam
from webhooks.webwork.backfill_cli import backfill_command
from webhooks.webwork.poll_job import POLLER
from webhooks.webwork.views import bp


def setup(app: Flask) -> None:
    if "webwork_connection" not in app.blueprints:
        app.register_blueprint(bp)
    trackers.register_source(
        SOURCE,
        display_name="WebWork",
        parse_event=events.parse_event,
        normalize_timesheet=normalize.normalize_timesheet,
        fill_event=fill.fill_event,
        rate_hold_hint=rates.rate_hold_hint,
        event_kinds=seam.EVENT_KINDS,
        signature=STANDARD_WEBHOOKS,
        contract=seam.CONTRACT,
        card=seam.CARD,
        account=seam.ACCOUNT,
        poller=POLLER,
        commands=(backfill_command,),
        workspace_id_hint="shown in WebWork under Settings",
    )

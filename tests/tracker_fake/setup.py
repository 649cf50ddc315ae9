"""Plug Tally in: its blueprint (the card template) and one registration."""

from __future__ import annotations

from flask import Blueprint, Flask

from connector import trackers
from tests.tracker_fake import SOURCE, source

bp = Blueprint("tally_connection", __name__, template_folder="templates")


def setup(app: Flask) -> None:
    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
    trackers.register_source(
        SOURCE,
        display_name="Tally",
        parse_event=source.parse_event,
        normalize_timesheet=source.normalize_timesheet,
        event_kinds=source.EVENT_KINDS,
        signature=trackers.Signature(
            verify=source.verify, sign=source.sign, uses_workspace_secret=False
        ),
        contract=source.CONTRACT,
        card=trackers.Card(template="tally/card.html", context=source.card_context),
        account=trackers.Account(
            token_label="Tally API key",
            connect_token=source.connect_token,
            disconnect=source.disconnect,
            on_connect=source.on_connect,
            on_disconnect=source.on_disconnect,
        ),
        poller=trackers.Poller(
            job_kind="tally_poll",
            interval_setting="TALLY_POLL_SECONDS",
            poll=source.poll,
            recheck_seconds=900.0,
            wakes=(source.WAIT_TALLY,),
        ),
        workspace_id_hint="shown in Tally under Account",
    )

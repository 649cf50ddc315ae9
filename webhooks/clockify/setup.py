"""Plug the Clockify source into the app: its card's templates and the core's registry."""

from __future__ import annotations

import re

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
        check_workspace_id=workspace_id_problem,
    )


# Clockify's ids are MongoDB ObjectIds: 24 hexadecimal characters (every id its API returns).
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


def workspace_id_problem(value: str) -> str | None:
    if _OBJECT_ID.fullmatch(value):
        return None
    return (
        "Use the Clockify workspace's id: 24 characters 0-9 and a-f, for example "
        "64f0aa11bb22cc33dd44ee55 (in Clockify's address bar: app.clockify.me/workspaces/<id>/)."
    )

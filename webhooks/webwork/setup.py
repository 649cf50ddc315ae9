"""Plug the WebWork source into the app: routes, CLI, the poll job and the core's registry."""

from __future__ import annotations

from flask import Flask

from connector import trackers, worker
from webhooks.webwork import events, fill, normalize, poll_job, polls, rates
from webhooks.webwork.views import bp
from webhooks.webwork.webwork_cli import tracker_cli


def setup(app: Flask) -> None:

    if "webwork_connection" not in app.blueprints:
        app.register_blueprint(bp)
    app.cli.add_command(tracker_cli)
    worker.HANDLERS[polls.JOB_KIND] = poll_job.poll_job
    trackers.register_source(
        "webwork",
        display_name="WebWork Time Tracker",
        parse_event=events.parse_event,
        normalize_timesheet=normalize.normalize_timesheet,
        fill_event=fill.fill_event,
        rate_hold_hint=rates.rate_hold_hint,
    )

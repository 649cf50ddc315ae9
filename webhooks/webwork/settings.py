"""WebWork's environment variables (the app collects ``SETTINGS`` of each tracker source's
``settings`` module for ``connector.config.load_config``; the README's table lists them)."""

from __future__ import annotations

from connector.config import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting("WEBWORK_CLIENT_ID", None, "WebWork OAuth client id (tracker connection)."),
    Setting("WEBWORK_CLIENT_SECRET", None, "WebWork OAuth client secret.", secret=True),
    Setting(
        "WEBWORK_API_BASE_URL",
        "https://api.webwork-tracker.com/api/v2",
        "WebWork REST API V2 base (override only for tests or a local fake).",
    ),
    Setting(
        "WEBWORK_AUTHORIZE_URL",
        "https://webwork-tracker.com/oauth/authorize",
        "WebWork OAuth authorize URL (the admin's consent screen).",
    ),
    Setting(
        "WEBWORK_TOKEN_URL",
        "https://webwork-tracker.com/oauth/token",
        "WebWork OAuth token URL (code exchange and refresh).",
    ),
    Setting(
        "WEBWORK_POLL_SECONDS",
        "300",
        "How often each connected workspace's WebWork timesheets are polled for approvals "
        "(`0` switches periodic polling off; Poll now still works).",
    ),
    Setting(
        "WEBWORK_POLL_WINDOW_DAYS",
        "62",
        "How many days of timesheet periods each poll looks at (a late approval of last "
        "month's sheet is still found).",
    ),
    Setting(
        "WEBWORK_REQUESTS_PER_MINUTE",
        "57",
        "Requests per minute per connected WebWork user, spaced evenly and shared by every "
        "process (WebWork allows 60; at most 58 is used so no sliding minute exceeds 60).",
    ),
    Setting(
        "WEBWORK_TIMEOUT_SECONDS",
        "30",
        "Read timeout of one WebWork API request (the connect timeout is 5 s).",
    ),
    Setting(
        "WEBWORK_RATES_REFRESH_SECONDS",
        "3600",
        "How long projects, contracts (rates) and project viewers read from WebWork are cached "
        "(a timesheet naming one the cache lacks refreshes it at once); `0` reads them at "
        "every poll.",
    ),
)

"""Clockify's addresses and limits, declared once (the settings table and ``load_config``)."""

from __future__ import annotations

from connector.config import Setting
from webhooks.clockify.client import DEFAULT_API_BASE_URL, DEFAULT_REPORTS_BASE_URL

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CLOCKIFY_API_BASE_URL",
        DEFAULT_API_BASE_URL,
        "Clockify's REST API. A workspace hosted in a region uses its regional address "
        "(e.g. `https://euc1.clockify.me/api/v1`); see docs/clockify.md.",
    ),
    Setting(
        "CLOCKIFY_REPORTS_BASE_URL",
        DEFAULT_REPORTS_BASE_URL,
        "Clockify's Reports API (regional workspaces: their regional reports address).",
    ),
    Setting(
        "CLOCKIFY_REQUESTS_PER_SECOND",
        "10",
        "Requests a second to one Clockify workspace, shared by every process (Clockify allows "
        "50 on paid plans; the rest is left to the workspace's other integrations).",
    ),
    Setting("CLOCKIFY_TIMEOUT_SECONDS", "30", "Read timeout of one Clockify request."),
    Setting(
        "CLOCKIFY_POLL_SECONDS",
        "900",
        "How often approved requests are listed to find approvals whose webhook was lost "
        "(`0`: never; webhooks alone).",
    ),
    Setting(
        "CLOCKIFY_POLL_WINDOW_DAYS",
        "62",
        "How far back the reconciling poll looks, by an approval request's last status change.",
    ),
    Setting(
        "CLOCKIFY_CATALOG_SECONDS",
        "3600",
        "How often Clockify's clients and projects are re-read for the mapping page (`0`: at "
        "every poll).",
    ),
)

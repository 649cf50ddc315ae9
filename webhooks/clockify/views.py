"""Clockify's web pieces: only its Connections card's template (the console's tracker routes,
``/workspaces/<id>/connections/tracker/...``, connect, poll and disconnect through the seam)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("clockify_connection", __name__, template_folder="templates")

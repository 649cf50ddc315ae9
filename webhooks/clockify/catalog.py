"""Clockify's clients and projects on the mapping page before any approval names them.

Read with the poll (at most every ``CLOCKIFY_CATALOG_SECONDS``, default hourly, or when asked:
``tracker poll ID --refresh-rates``): a project is listed with the client it belongs to, so the
mapping page can suggest the project's customer. Approvals add what they name anyway (the
pipeline records every approval's projects and clients).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from connector import db
from connector.models import utcnow
from connector.pipeline.tracker_entities import upsert_tracker_entities
from webhooks.clockify.client import ClockifyClient
from webhooks.clockify.store import store_for

DEFAULT_SECONDS = 3600.0


def entities(projects: list[dict[str, Any]], clients: list[dict[str, Any]]) -> dict:
    """(kind, id) -> what the mapping page shows; archived ones too (old time names them)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for client in clients:
        if client.get("id"):
            seen[("client", str(client["id"]))] = {
                "name": str(client.get("name") or client["id"]),
                "email": client.get("email") or None,
                "client_id": None,
            }
    for project in projects:
        if project.get("id"):
            client_id = str(project.get("clientId") or "") or None
            seen[("project", str(project["id"]))] = {
                "name": str(project.get("name") or project["id"]),
                "email": None,
                "client_id": client_id,
            }
    return seen


def due(workspace_id: int, *, force: bool = False) -> bool:
    if force:
        return True
    value = current_app.config.get("CLOCKIFY_CATALOG_SECONDS")
    every = DEFAULT_SECONDS if value is None or value == "" else float(value)  # 0: every poll
    synced = store_for(workspace_id).meta().get("catalog_synced_at")
    try:
        last = datetime.fromisoformat(synced) if synced else None
    except ValueError:
        last = None
    return last is None or utcnow() - last >= timedelta(seconds=every)


def sync(workspace_id: int, client: ClockifyClient) -> int:
    """Read the workspace's clients and projects into the mapping page; how many entities."""
    found = entities(client.projects(), client.clients())
    with db.session_scope() as s:
        upsert_tracker_entities(s, workspace_id, found)
    store_for(workspace_id).update_meta(catalog_synced_at=utcnow().isoformat())
    return len(found)

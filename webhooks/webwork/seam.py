"""What WebWork declares to the core beside its parser and normalizer (``connector.trackers``):
its event kinds, its contract and samples, its Connections card and its account."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from connector import db, trackers
from connector.models import Connection, Workspace
from webhooks.webwork import connection as conn
from webhooks.webwork.events import SCHEMA_PATH

FIXTURES = Path(__file__).with_name("fixtures")

EVENT_KINDS: dict[str, trackers.EventKind] = {
    "timesheet.approved": trackers.APPROVAL,
    "timesheet.unapproved": trackers.WITHDRAWAL,
}


def _addressed(document: dict[str, Any], tracker_workspace_id: str) -> dict[str, Any]:
    document["data"]["workspace_id"] = tracker_workspace_id
    return document


CONTRACT = trackers.Contract(
    schema_path=SCHEMA_PATH,
    samples={path.stem: path for path in sorted(FIXTURES.glob("*.json"))},
    default_sample="timesheet_approved__three_customers",
    address=_addressed,
    rows_pointer="/data/timesheet/daily_breakdown",
)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def card_context(workspace_id: int, connection: Connection | None) -> dict[str, Any]:
    """The WebWork card's variables: how it is connected, and why polling is held."""
    meta = dict(connection.meta or {}) if connection else {}
    return {
        "kind": meta.get("kind"),
        "masked_key": meta.get("masked_key"),
        "workspace_name": meta.get("webwork_workspace_name"),
        "timesheets_seen": meta.get("timesheets_seen"),
        "rates_visible": meta.get("rates_visible"),
        # Held by WebWork's refusal: since when, why, and the last automatic re-check.
        "held_at": _when(meta.get("held_at")),
        "held_reason": meta.get("held_reason"),
        "last_check_at": _when(meta.get("last_check_at")),
        "last_check_error": meta.get("last_check_error"),
    }


CARD = trackers.Card(template="webwork/card.html", context=card_context)


def connect_token(workspace_id: int, token: str, connected_by: str) -> str:
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        if workspace is None:
            raise trackers.ConnectRefused(f"There is no workspace {workspace_id}.")
        tracker_workspace_id = workspace.tracker_workspace_id
    meta = conn.connect_with_token(
        workspace_id, tracker_workspace_id, token, connected_by=connected_by
    )
    return (
        f"WebWork connected for workspace {workspace_id} as {meta['connected_as']} "
        f"(token {meta['masked_key']}); polling every few minutes starts now."
    )


ACCOUNT = trackers.Account(
    token_label="WebWork personal access token",
    connect_token=connect_token,
    disconnect=conn.disconnect,
)

"""Tally, the seam tests' second tracker: every part a source declares, nothing else."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector import billing, ratelimit, trackers, worker
from connector.models import Connection
from tests.tracker_fake import SOURCE
from webhooks import poll_memory, polling

HERE = Path(__file__).parent
SCHEMA = HERE / "event.schema.json"
FIXTURES = HERE / "fixtures"
TOKEN_HEADER = "X-Tally-Token"
WAIT_TALLY = "tally_reconnect"


@dataclass
class FakeTally:
    """What Tally's API would answer, and what was asked of it."""

    keys: dict[str, str] = field(default_factory=lambda: {"key-ok": "Ada Admin"})
    approved: dict[str, dict[str, Any]] = field(default_factory=dict)  # sheet id -> sheet
    webhooks: dict[int, str] = field(default_factory=dict)  # workspace id -> webhook token
    calls: list[str] = field(default_factory=list)
    refuse_next_poll: str | None = None  # "refused" | "429"
    refuse_unregister: bool = False


TALLY = FakeTally()


class TallyError(trackers.EventError):
    pass


@dataclass(frozen=True)
class Event:
    type: str
    timestamp: datetime
    workspace_id: str
    timesheet: dict[str, Any]
    source: str = SOURCE

    @property
    def supported(self) -> bool:
        return self.type in EVENT_KINDS

    @property
    def is_approval(self) -> bool:
        return EVENT_KINDS.get(self.type) == trackers.APPROVAL

    @property
    def timesheet_id(self) -> str:
        return str(self.timesheet["id"])

    @property
    def is_thin(self) -> bool:
        return "rows" not in self.timesheet


EVENT_KINDS: dict[str, trackers.EventKind] = {
    "sheet.approved": trackers.APPROVAL,
    "sheet.withdrawn": trackers.WITHDRAWAL,
}


def parse_event(body: bytes) -> Event:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise TallyError(400, "", f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise TallyError(400, "", "body must be a JSON object")
    for name in ("event", "at", "account", "sheet"):
        if name not in doc:
            raise TallyError(422, f"/{name}", f"'{name}' is required")
    sheet = doc["sheet"]
    if not isinstance(sheet, dict) or not isinstance(sheet.get("id"), str):
        raise TallyError(422, "/sheet/id", "'id' is required")
    return Event(
        type=str(doc["event"]),
        timestamp=datetime.fromisoformat(doc["at"]).astimezone(UTC),
        workspace_id=str(doc["account"]),
        timesheet=sheet,
    )


def normalize_timesheet(raw: dict[str, Any]) -> billing.TimesheetInput:
    rows = []
    for index, row in enumerate(raw.get("rows") or []):
        if not row.get("project"):
            raise TallyError(422, f"/sheet/rows/{index}/project", "is missing")
        client = row.get("client")
        rows.append(
            billing.TimeRow(
                date=date.fromisoformat(row["day"]),
                project_id=str(row["project"]),
                project_name=str(row.get("project_name") or row["project"]),
                minutes=int(row["minutes"]),
                rate=billing.Money(Decimal(row["rate"]), row["currency"])
                if row.get("rate")
                else None,
                client=billing.Client(str(client["id"]), str(client["name"])) if client else None,
            )
        )
    member = raw["member"]
    return billing.TimesheetInput(
        id=str(raw["id"]),
        member=billing.Member(str(member["id"]), str(member["name"])),
        date_from=date.fromisoformat(raw["from"]),
        date_to=date.fromisoformat(raw["to"]),
        rows=tuple(rows),
    )


# --- signature: a per-connection token in a header, compared in constant time --------------
def verify(delivery: trackers.SignedDelivery) -> str:
    offered = {k.lower(): v for k, v in delivery.headers.items()}.get(TOKEN_HEADER.lower(), "")
    expected = str(polling.store_for(SOURCE, delivery.workspace_id).load().get("webhook_token"))
    if not offered or not hmac.compare_digest(offered.encode(), expected.encode()):
        raise trackers.SignatureRejected(f"missing or wrong {TOKEN_HEADER}")
    return "tally:" + hashlib.sha256(delivery.body).hexdigest()


def sign(secret: str, body: bytes) -> dict[str, str]:
    return {TOKEN_HEADER: secret}


def address(document: dict[str, Any], tracker_workspace_id: str) -> dict[str, Any]:
    document["account"] = tracker_workspace_id
    return document


# --- account: an API key, webhooks registered on connect, removed on disconnect ---------------
def connect_token(workspace_id: int, token: str, connected_by: str) -> str:
    TALLY.calls.append("GET /me")
    who = TALLY.keys.get(token.strip())
    if who is None:
        raise trackers.ConnectRefused("Tally refused this API key: create a new one in Tally.")
    polling.store_for(SOURCE, workspace_id).connect(
        {"api_key": token.strip()},
        account_id=None,
        environment=None,
        account_name=who,
        meta={"connected_by": connected_by},
    )
    polling.schedule_poll(SOURCE, workspace_id, delay_seconds=0.0)
    return f"Tally connected as {who}."


def on_connect(workspace_id: int) -> None:
    TALLY.calls.append("POST /webhooks")
    token = f"whtok-{workspace_id}"
    TALLY.webhooks[workspace_id] = token
    store = polling.store_for(SOURCE, workspace_id)
    store.save({**store.load(), "webhook_token": token})
    store.update_meta(webhooks="registered")


def on_disconnect(workspace_id: int) -> None:
    TALLY.calls.append("DELETE /webhooks")
    if TALLY.refuse_unregister:
        raise trackers.ConnectRefused("Delete the webhook in Tally (Settings > Webhooks).")
    TALLY.webhooks.pop(workspace_id, None)


def disconnect(workspace_id: int) -> bool:
    store = polling.store_for(SOURCE, workspace_id)
    row = store.connection()
    if row is None or row.status == "disconnected":
        return False
    store.disconnect()
    polling.cancel_polls(SOURCE, workspace_id)
    return True


def card_context(workspace_id: int, connection: Connection | None) -> dict[str, Any]:
    return {"webhooks": (connection.meta or {}).get("webhooks", "none") if connection else "none"}


# --- the reconciling poll: approved sheets, through the shared limiter and poll memory ---------
def poll(workspace_id: int, config: Mapping[str, Any], refresh: bool) -> str:
    ratelimit.shared_limiter().acquire(f"tally:{workspace_id}", ((60, 60.0),))
    TALLY.calls.append("GET /approved")
    refusal, TALLY.refuse_next_poll = TALLY.refuse_next_poll, None
    if refusal == "refused":
        raise trackers.PollProblem("Tally refused the API key.", refused=True)
    if refusal == "429":
        raise trackers.PollProblem("Tally asked us to slow down.", retry_after=1200.0)
    found = 0
    for sheet_id, sheet in TALLY.approved.items():
        digest = hashlib.sha256(json.dumps(sheet, sort_keys=True).encode()).hexdigest()
        if poll_memory.what_was_seen(SOURCE, workspace_id, sheet_id).rows_hash == digest:
            continue
        body = json.dumps(
            {
                "event": "sheet.approved",
                "at": datetime.now(UTC).isoformat(),
                "account": "acct-9",
                "sheet": sheet,
            }
        ).encode()
        delivery, job = poll_memory.record(
            SOURCE,
            workspace_id,
            sheet_id,
            status="approved",
            digest=digest,
            now=datetime.now(UTC),
            change=poll_memory.Change("approval", body),
        )
        found += delivery is not None
        if job is not None:
            worker.job_committed(job)  # inline in immediate mode; else the worker's sweep
    return f"{found} new approval(s)" + (" (rates refreshed)" if refresh else "")


CONTRACT = trackers.Contract(
    schema_path=SCHEMA,
    samples={p.stem: p for p in sorted(FIXTURES.glob("*.json"))},
    default_sample="sheet_approved__two_customers",
    address=address,
    rows_pointer="/sheet/rows",
)

"""The registry through which the core reaches tracker sources (``webhooks/<source>/``).

The core (pipeline, console, API, CLI) never imports a tracker's package: a source registers
what it can do here when the app is built (``webhooks.<source>.setup``), and the core asks
through these functions, dispatched by the delivery's, the timesheet's or the workspace's
``source``. What a source declares beside its parser and normalizer (event kinds, signature
check, schema and samples, connect card, account, poller) is in :mod:`connector.trackers.parts`.

A tracker is one folder ``webhooks/<name>/`` (events, normalize, fixtures, client, poller,
``setup.py`` calling :func:`register_source`) plus one line in ``connector/app.py``'s
``TRACKER_SOURCES``; nothing outside its folder names it (``tests/test_tracker_seam.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from connector import billing, db
from connector.models import Connection, ConnectionStatus
from connector.trackers.parts import (
    APPROVAL,
    WITHDRAWAL,
    Account,
    Card,
    ConnectRefused,
    Contract,
    Disconnection,
    EventKind,
    PollBusy,
    Poller,
    PollProblem,
    Signature,
    SignatureRejected,
    SignedDelivery,
)

__all__ = [
    "APPROVAL",
    "WITHDRAWAL",
    "Account",
    "Card",
    "ConnectRefused",
    "Contract",
    "Disconnection",
    "EventError",
    "EventKind",
    "PollBusy",
    "PollProblem",
    "Poller",
    "Signature",
    "SignatureRejected",
    "SignedDelivery",
    "Source",
    "TrackerEvent",
    "UnknownSource",
]

log = logging.getLogger(__name__)


class EventError(Exception):
    """Authentic but malformed: 400 (not JSON) or 422 (JSON that breaks the source's contract).

    Each source raises its own subclass; the core catches this one."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.status = status
        self.field = field
        self.message = message


class TrackerEvent(Protocol):
    """What the core reads of a parsed tracker event (each source has its own class). What the
    event means is its source's ``event_kinds[type]`` (:func:`kind_of`), not the event's own."""

    @property
    def source(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...  # the tracker's workspace (checked against the endpoint)
    @property
    def timestamp(self) -> datetime: ...
    @property
    def timesheet(self) -> dict[str, Any]: ...
    @property
    def timesheet_id(self) -> str: ...
    @property
    def is_thin(self) -> bool: ...


class UnknownSource(LookupError):
    """No tracker registered under this name (a delivery stored by a source since removed)."""


@dataclass(frozen=True)
class Source:
    """One tracker: how its deliveries are read and turned into the billing engine's input,
    and the parts the receiver, API, console and CLI read (:mod:`connector.trackers.parts`)."""

    name: str
    display_name: str
    # raw delivery body -> event (raises an EventError subclass)
    parse_event: Callable[[bytes], TrackerEvent]
    # the stored timesheet JSON -> billing.TimesheetInput (raises an EventError subclass)
    normalize_timesheet: Callable[[dict[str, Any]], billing.TimesheetInput]
    # event type -> what it means to the pipeline; other types are acknowledged and ignored
    event_kinds: Mapping[str, EventKind] = field(default_factory=dict)
    signature: Signature | None = None  # None: no webhook is accepted (401)
    contract: Contract | None = None
    card: Card | None = None
    account: Account | None = None
    poller: Poller | None = None
    # Extra ``flask tracker ...`` commands only this source has (e.g. a backfill)
    commands: tuple[Any, ...] = ()
    # Where an admin finds the tracker's workspace id (the create-workspace form's hint)
    workspace_id_hint: str = ""

    def kind_of(self, event_type: str | None) -> EventKind | None:
        return self.event_kinds.get(event_type or "")

    def types_of(self, kind: EventKind) -> frozenset[str]:
        return frozenset(t for t, k in self.event_kinds.items() if k == kind)


SOURCES: dict[str, Source] = {}

# source -> fn(workspace_id, event, *, polled) -> the event ready to bill, or None (as it is)
_FILLERS: dict[str, Callable[..., Any]] = {}
# source -> fn(workspace_id) -> extra words for a "needs rate" hold, or None
_RATE_HINTS: dict[str, Callable[[int], str | None]] = {}
# connection provider name -> display name, for tracker accounts (not accounting ones)
TRACKER_PROVIDERS: dict[str, str] = {}


def register_source(
    source: str,
    *,
    display_name: str,
    parse_event: Callable[[bytes], TrackerEvent],
    normalize_timesheet: Callable[[dict[str, Any]], billing.TimesheetInput],
    fill_event: Callable[..., Any] | None = None,
    rate_hold_hint: Callable[[int], str | None] | None = None,
    event_kinds: Mapping[str, EventKind] | None = None,
    signature: Signature | None = None,
    contract: Contract | None = None,
    card: Card | None = None,
    account: Account | None = None,
    poller: Poller | None = None,
    commands: tuple[Any, ...] = (),
    workspace_id_hint: str = "",
) -> Source:
    """Plug a tracker in (called from its ``setup.py``); registering again replaces it."""
    registered = Source(
        source,
        display_name,
        parse_event,
        normalize_timesheet,
        event_kinds=dict(event_kinds or {}),
        signature=signature,
        contract=contract,
        card=card,
        account=account,
        poller=poller,
        commands=tuple(commands),
        workspace_id_hint=workspace_id_hint,
    )
    SOURCES[source] = registered
    TRACKER_PROVIDERS[source] = display_name
    if fill_event is not None:
        _FILLERS[source] = fill_event
    if rate_hold_hint is not None:
        _RATE_HINTS[source] = rate_hold_hint
    return registered


def get_source(source: str) -> Source:
    try:
        return SOURCES[source]
    except KeyError:
        raise UnknownSource(f"no tracker source {source!r} is registered") from None


def default_source() -> str:
    """The tracker a new workspace receives from unless told otherwise (the first registered)."""
    if not SOURCES:
        raise UnknownSource("no tracker source is registered")
    return next(iter(SOURCES))


def display_name(source: str) -> str:
    """The tracker's name for people (the source's key when it is no longer registered)."""
    found = SOURCES.get(source)
    return source if found is None else found.display_name


def is_source(source: str) -> bool:
    return source in SOURCES


def kind_of(source: str, event_type: str | None) -> EventKind | None:
    """What a stored event type means to the pipeline (None: not an event that is billed)."""
    found = SOURCES.get(source)
    return None if found is None else found.kind_of(event_type)


def connect_account(source: str, workspace_id: int, token: str, connected_by: str) -> str:
    """Connect the workspace's tracker account with a pasted token, then run the source's
    on-connect hook (e.g. register its webhooks); a hook's refusal undoes the connection."""
    account = get_source(source).account
    if account is None:
        raise ConnectRefused(f"{get_source(source).display_name} cannot be connected with a token.")
    said = account.connect_token(workspace_id, token, connected_by)
    if account.on_connect is not None:
        try:
            account.on_connect(workspace_id)
        except ConnectRefused:
            account.disconnect(workspace_id)
            raise
    return said


def disconnect_account(source: str, workspace_id: int) -> Disconnection:
    """Run the source's on-disconnect hook (e.g. remove its webhooks; a failure never blocks),
    then forget the credentials."""
    account = get_source(source).account
    if account is None:
        return Disconnection(done=False)
    warning: str | None = None
    if account.on_disconnect is not None:
        try:
            account.on_disconnect(workspace_id)
        except ConnectRefused as exc:
            warning = exc.message
        except Exception:  # the tracker may be down or the key revoked: forget ours anyway
            log.exception("on-disconnect of %s for workspace %s failed", source, workspace_id)
            warning = f"{get_source(source).display_name} could not be told about the disconnect."
    return Disconnection(done=account.disconnect(workspace_id), warning=warning)


def parse_event(source: str, body: bytes) -> TrackerEvent:
    """A stored delivery's body as its source's event (raises EventError)."""
    return get_source(source).parse_event(body)


def normalize_timesheet(source: str, raw: dict[str, Any]) -> billing.TimesheetInput:
    """A source's timesheet JSON as the billing engine's input (raises EventError)."""
    return get_source(source).normalize_timesheet(raw)


def fill_event(workspace_id: int, source: str, event: Any, *, polled: bool = False) -> Any:
    """The approval ready to bill, or None (used as sent). Webhook events get their rows read
    from the tracker's API (thin ones filled; none when no account is connected); an event a
    poll stored (``polled``) already carries the rows the poll listed and is not read again."""
    filler = _FILLERS.get(source)
    return None if filler is None else filler(workspace_id, event, polled=polled)


# A delivery a source stored from its own poll of the tracker's API (not a webhook) says so in
# this header: its rows were read from the API already.
POLLED_HEADER = "x-delivered-by"


def polled_headers(source: str) -> dict[str, str]:
    return {POLLED_HEADER: f"{source}-poll"}


def is_polled(source: str, headers: Any) -> bool:
    return isinstance(headers, dict) and headers.get(POLLED_HEADER) == f"{source}-poll"


def rate_hold_hint(workspace_id: int, source: str) -> str | None:
    hint = _RATE_HINTS.get(source)
    return None if hint is None else hint(workspace_id)


@dataclass(frozen=True)
class TrackerStatus:
    """Is the workspace's tracker account connected, and when did it last poll (first-run
    checklist, connections page)."""

    source: str | None
    connected: bool
    status: str  # connected | reconnect_needed | disconnected | not_connected
    connected_as: str | None = None
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    next_poll_at: datetime | None = None
    last_error: str | None = None


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def tracker_status(workspace_id: int) -> TrackerStatus:
    with db.new_session() as s:
        rows = list(
            s.scalars(
                select(Connection).where(
                    Connection.workspace_id == workspace_id,
                    Connection.provider.in_(list(TRACKER_PROVIDERS) or [""]),
                )
            )
        )
    row = next((r for r in rows if r.status != ConnectionStatus.DISCONNECTED), None)
    if row is None:
        return TrackerStatus(source=None, connected=False, status="not_connected")
    meta = dict(row.meta or {})
    return TrackerStatus(
        source=row.provider,
        connected=row.status == ConnectionStatus.CONNECTED,
        status=row.status,
        connected_as=row.account_name,
        last_poll_at=_when(meta.get("last_poll_at")),
        last_success_at=_when(meta.get("last_success_at")),
        next_poll_at=_when(meta.get("next_poll_at")),
        last_error=row.last_error or meta.get("last_error"),
    )

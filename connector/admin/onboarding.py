"""First-run checklist of a workspace, and the one place that says whether an accounting
account or the tracker is connected.

``tracker_feed`` is the only function that knows how the tracker is connected: a connected
tracker account (the source's OAuth or token, polled; ``connector.trackers``), or else signed
webhook deliveries (done once one arrived).

``accounting_state`` is what every page asks before it says "needs mapping" or "reconnect": a
QuickBooks or Stripe workspace that never connected is told to *connect first*, not to reconnect.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector import books, db, rates, trackers
from connector.models import (
    Connection,
    ConnectionStatus,
    CustomerMapping,
    Delivery,
    DeliveryStatus,
    Draft,
    DraftStatus,
    Timesheet,
    TrackerEntity,
    Workspace,
)
from connector.providers import DISPLAY_NAMES, EXTERNAL_PROVIDERS

# The accounting systems an admin can connect, from the registry (never a list of its own).
EXTERNAL_DISPLAY_NAMES = tuple(DISPLAY_NAMES[key] for key in EXTERNAL_PROVIDERS)


def _either(names: tuple[str, ...]) -> str:
    """ "A", "A or B", "A, B or C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


# Authentic deliveries: the signature verified (an invalid body is still authentic, but it is
# not "connected and working", so it does not count).
_SIGNED_STATUSES = (
    DeliveryStatus.ACCEPTED,
    DeliveryStatus.PROCESSED,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.IGNORED,
    DeliveryStatus.FAILED,
)


class AccountingState(enum.StrEnum):
    LOCAL = "local"  # the built-in ledger: nothing to connect
    CONNECTED = "connected"
    NOT_CONNECTED = "not_connected"  # never connected, or disconnected on purpose
    RECONNECT_NEEDED = "reconnect_needed"  # was connected, the provider revoked/expired it


class StepState(enum.StrEnum):
    DONE = "done"
    TODO = "todo"
    WAITING = "waiting"  # nothing to do yet: waits for something outside (the first approval)


@dataclass(frozen=True)
class Action:
    label: str
    url: str
    method: str = "get"  # "post" renders a form with the CSRF token
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    state: StepState
    detail: str
    actions: list[Action] = field(default_factory=list)


@dataclass(frozen=True)
class TrackerFeed:
    """Do approvals reach the workspace (the checklist's view over trackers.tracker_status)?"""

    connected: bool
    last_received_at: Any  # datetime | None
    detail: str


def tracker_feed(workspace: Workspace, s: Session | None = None) -> TrackerFeed:
    """Is the tracker sending this workspace its approvals? A connected tracker account (polled),
    else signed webhook deliveries."""
    account = trackers.tracker_status(workspace.id)
    name = trackers.display_name(workspace.tracker_source)
    if account.connected:
        polled = (
            f"; last successful poll {account.last_success_at:%Y-%m-%d %H:%M} UTC"
            if account.last_success_at
            else "; the first poll is on its way"
        )
        return TrackerFeed(
            True,
            account.last_success_at,
            f"{name} account connected as {account.connected_as or 'its owner'}{polled}.",
        )
    if account.status == "reconnect_needed":
        return TrackerFeed(
            False,
            None,
            f"{name} refused the saved sign-in: reconnect {name} on the Connections page. "
            "Approvals wait until then; nothing is lost.",
        )
    s = s or db.session
    last = s.scalar(
        select(func.max(Delivery.received_at)).where(
            Delivery.workspace_id == workspace.id, Delivery.status.in_(list(_SIGNED_STATUSES))
        )
    )
    if last is None:
        return TrackerFeed(
            False,
            None,
            f"Connect your {name} account on the Connections page (approvals are then found by "
            "polling), or paste the webhook URL and signing secret into a sender of signed "
            "approval events. This step is done when either works."
            if uses_workspace_secret(workspace)
            else f"Connect your {name} account on the Connections page: its approvals then "
            "reach this workspace by themselves. This step is done when it is connected.",
        )
    return TrackerFeed(
        True, last, f"Signed events arrive; the last one at {last:%Y-%m-%d %H:%M} UTC."
    )


def accounting_state(workspace: Workspace, s: Session | None = None) -> AccountingState:
    if workspace.provider == "local":
        return AccountingState.LOCAL
    s = s or db.session
    status = s.scalar(
        select(Connection.status).where(
            Connection.workspace_id == workspace.id, Connection.provider == workspace.provider
        )
    )
    if status == ConnectionStatus.CONNECTED:
        return AccountingState.CONNECTED
    if status == ConnectionStatus.RECONNECT_NEEDED:
        return AccountingState.RECONNECT_NEEDED
    return AccountingState.NOT_CONNECTED


def connect_first_message(workspace: Workspace) -> str:
    name = DISPLAY_NAMES.get(workspace.provider, workspace.provider)
    return (
        f"Connect {name} first: this workspace bills into {name}, which is not connected yet. "
        "Nothing is lost meanwhile; approvals wait and are invoiced once it is connected."
    )


# How many of the newest approvals say which projects carry billable time. Bounded so the
# overview stays fast on a workspace with years of approvals; older projects still show their
# holds under "Needs attention".
BILLABLE_SCAN_APPROVALS = 1000


def billable_subjects(workspace_id: int, s: Session | None = None) -> set[tuple[str, str]]:
    """("project"|"client", id) of every tracker project/client with billable time in the newest
    ``BILLABLE_SCAN_APPROVALS`` approvals; projects only tracked non-billable need no customer."""
    s = s or db.session
    seen: set[tuple[str, str]] = set()
    for content in s.scalars(
        select(Timesheet.content)
        .where(Timesheet.workspace_id == workspace_id, Timesheet.content.is_not(None))
        .order_by(Timesheet.id.desc())
        .limit(BILLABLE_SCAN_APPROVALS)
    ):
        for rows in (content or {}).get("daily_breakdown", {}).values():
            for row in rows or []:
                if not isinstance(row, dict) or row.get("billable") is False:
                    continue
                if row.get("project_id") is not None:
                    seen.add(("project", str(row["project_id"])))
                client = row.get("client")
                if isinstance(client, dict) and client.get("id") is not None:
                    seen.add(("client", str(client["id"])))
    return seen


def unmapped_billable(workspace_id: int, s: Session | None = None) -> list[TrackerEntity]:
    """Projects with billable time that bill nowhere (no own mapping, no mapped client)."""
    s = s or db.session
    mapped = set(
        s.execute(
            select(CustomerMapping.kind, CustomerMapping.tracker_id).where(
                CustomerMapping.workspace_id == workspace_id
            )
        ).all()
    )
    billable = billable_subjects(workspace_id, s)
    projects = s.scalars(
        select(TrackerEntity)
        .where(TrackerEntity.workspace_id == workspace_id, TrackerEntity.kind == "project")
        .order_by(TrackerEntity.name)
    )
    return [
        p
        for p in projects
        if ("project", p.tracker_id) in billable
        and ("project", p.tracker_id) not in mapped
        and not (p.client_id and ("client", p.client_id) in mapped)
    ]


def _live_draft_count(s: Session, workspace_id: int, *statuses: str) -> int:
    return (
        s.scalar(
            select(func.count())
            .select_from(Draft)
            .join(Timesheet, Timesheet.id == Draft.timesheet_pk)
            .where(
                Draft.workspace_id == workspace_id,
                Draft.revision == Timesheet.revision,
                Draft.status.in_(list(statuses)),
            )
        )
        or 0
    )


def _rates_step(s: Session, workspace: Workspace) -> Step:
    """Done once a rate that applies to the current books exists or an approval was drafted."""
    ws_id = workspace.id
    rates_url = url_for("mappings.rates", workspace_id=ws_id)
    held_for_rate = _live_draft_count(s, ws_id, DraftStatus.NEEDS_RATE)
    if held_for_rate:
        return Step(
            "rates",
            "Check hourly rates",
            StepState.TODO,
            f"{held_for_rate} draft(s) wait for an hourly rate.",
            [Action("Add a rate", rates_url)],
        )
    # Only rates that apply to the books billed now count: customer rates of other books are
    # history (connector.rates) and would never price an approval.
    in_force = rates.applicable(ws_id, books.current_key(s, ws_id, workspace.provider))
    has_rates = bool(s.scalar(select(func.count()).select_from(in_force.subquery())))
    if has_rates or _live_draft_count(s, ws_id, DraftStatus.DRAFTED):
        return Step(
            "rates",
            "Check hourly rates",
            StepState.DONE,
            "Every approval so far found a rate (its own from the tracker, or the table's).",
            [Action("Review rates", rates_url)],
        )
    return Step(
        "rates",
        "Check hourly rates",
        StepState.TODO,
        "Hours that carry no rate from the tracker use the rate table. Add a workspace "
        "default, or rates per project or member.",
        [Action("Open the rate table", rates_url)],
    )


def uses_workspace_secret(workspace: Workspace) -> bool:
    """Does the workspace's tracker sign with the workspace's secret (shown to paste there)?"""
    source = trackers.SOURCES.get(workspace.tracker_source)
    return source is None or source.signature is None or source.signature.uses_workspace_secret


def tracker_actions(workspace: Workspace) -> list[Action]:
    """Connect the tracker; and the signing secret, when the tracker signs with it."""
    actions = [
        Action(
            f"Connect {trackers.display_name(workspace.tracker_source)}",
            url_for("admin.connections", workspace_id=workspace.id),
        )
    ]
    if uses_workspace_secret(workspace):
        actions.append(
            Action(
                # For a sender of signed events of the admin's own; secrets are shown once, when
                # created, so the page creates one rather than "showing" a stored one.
                "Get a signing secret (own sender)",
                url_for("admin.signing_secret", workspace_id=workspace.id),
            )
        )
    return actions


def checklist(workspace: Workspace, s: Session | None = None) -> list[Step]:
    """The first-run steps, each with its state and the button that does it."""
    s = s or db.session
    return [
        _tracker_step(workspace, s),
        _accounting_step(workspace, s),
        _mapping_step(workspace, s),
        _rates_step(s, workspace),
        _auto_invoicing_step(workspace),
    ]


def _tracker_step(workspace: Workspace, s: Session) -> Step:
    feed = tracker_feed(workspace, s)
    return Step(
        "tracker",
        "Connect the time tracker",
        StepState.DONE if feed.connected else StepState.TODO,
        feed.detail,
        [] if feed.connected else tracker_actions(workspace),
    )


def _accounting_step(workspace: Workspace, s: Session) -> Step:
    ws_id = workspace.id
    name = DISPLAY_NAMES.get(workspace.provider, workspace.provider)
    state = accounting_state(workspace, s)
    connections = url_for("admin.connections", workspace_id=ws_id)
    title = "Connect the accounting system"
    if state == AccountingState.LOCAL:
        either = _either(EXTERNAL_DISPLAY_NAMES)
        return Step(
            "accounting",
            title,
            StepState.DONE,
            "Drafts go to the built-in ledger, kept in this app. Connect "
            f"{either} at any time to invoice there instead.",
            [Action(f"Connect {either}", connections)],
        )
    if state == AccountingState.CONNECTED:
        return Step("accounting", title, StepState.DONE, f"{name} is connected.", [])
    reconnect = state == AccountingState.RECONNECT_NEEDED
    return Step(
        "accounting",
        title,
        StepState.TODO,
        f"{name} needs to be reconnected."
        if reconnect
        else f"This workspace bills into {name}, which is not connected yet.",
        [
            Action(f"{'Reconnect' if reconnect else 'Connect'} {name}", connections),
            Action(
                "Keep the built-in ledger instead",
                url_for("admin.use_ledger", workspace_id=ws_id),
                method="post",
            ),
        ],
    )


def _mapping_step(workspace: Workspace, s: Session) -> Step:
    ws_id = workspace.id
    title = "Map tracker clients to customers"
    mapping_url = url_for("mappings.index", workspace_id=ws_id)
    seen_any = s.scalar(
        select(func.count())
        .select_from(TrackerEntity)
        .where(TrackerEntity.workspace_id == ws_id, TrackerEntity.kind == "project")
    )
    if not seen_any:
        return Step(
            "mapping",
            title,
            StepState.WAITING,
            "Clients and projects appear here with the first approval.",
            [],
        )
    missing = unmapped_billable(ws_id, s)
    if not missing:
        return Step(
            "mapping",
            title,
            StepState.DONE,
            "Every project with billable time bills to a customer.",
            [Action("Review mappings", mapping_url)],
        )
    names = ", ".join(p.name or p.tracker_id for p in missing[:3])
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return Step(
        "mapping",
        title,
        StepState.TODO,
        f"{len(missing)} project(s) with billable time bill to no customer yet: {names}{more}.",
        [Action("Map customers", mapping_url)],
    )


def _auto_invoicing_step(workspace: Workspace) -> Step:
    title = "Switch automatic invoicing on"
    if workspace.auto_invoicing:
        return Step(
            "auto",
            title,
            StepState.DONE,
            "A draft invoice is created for each customer when a timesheet is approved.",
            [],
        )
    return Step(
        "auto",
        title,
        StepState.TODO,
        "Off: approvals are recorded but no drafts are created.",
        [
            Action(
                title,
                url_for("admin.auto_invoicing", workspace_id=workspace.id),
                method="post",
                fields={"enabled": "on"},
            )
        ],
    )

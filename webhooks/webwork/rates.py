"""Projects, clients (project viewers) and rates read from WebWork, cached per workspace.

* ``GET /projects``: name, ``is_billable`` and the project rate;
* ``GET /contracts``: one member on one project, with the rate and its dated history (visible
  only to users with the rate permission, and only on billable projects);
* ``GET /project-viewers``: WebWork's "clients" (read-only users on projects). A project's
  client is its first viewer by id, so the mapping page can suggest a customer per client.

Rates become ``TrackerRate`` rows the billing engine reads beside the admin's own rates (an admin
rate of the same scope and start day wins): contract rates at the member x project level,
project rates at the project level. The whole catalog is refreshed when older than
``WEBWORK_RATES_REFRESH_SECONDS``; a poll reads it from the connection's meta.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from sqlalchemy import delete

from connector import db, worker
from connector.locks import LockTimeout, advisory_lock
from connector.models import TrackerRate, Workspace, utcnow
from connector.pipeline.tracker_entities import upsert_tracker_entities
from connector.settings import WorkspaceSettings
from webhooks.webwork import SOURCE
from webhooks.webwork.catalog import Catalog
from webhooks.webwork.client import Forbidden, Unavailable, WebWorkClient
from webhooks.webwork.connection import WAIT_TRACKER_DATA, store_for
from webhooks.webwork.names import person_name

log = logging.getLogger(__name__)

DEFAULT_REFRESH_SECONDS = 3600.0

RATES_NOT_VISIBLE = (
    "Rates are not visible to the connected WebWork user, so WebWork's contract and project "
    "rates could not be read. Fix: in WebWork, give the connected user permission to see rates "
    "(or connect an Owner's account), or enter the rates on the Rates page; the draft is "
    "created as soon as a rate is known."
)


def _id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, dict):
        value = value.get("amount")
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _currency(raw: dict[str, Any], default: str) -> str:
    value = raw.get("currency")
    if isinstance(raw.get("rate"), dict):
        value = raw["rate"].get("currency") or value
    text = str(value or default).upper()
    return text if len(text) == 3 and text.isalpha() else default


def _day(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


_RATE_KEYS = ("rate", "hourly_rate", "amount")
_DATE_KEYS = ("effective_from", "date_from", "start_date", "from", "created_at")


def _has_rate_field(raw: dict[str, Any]) -> bool:
    return any(raw.get(k) is not None for k in _RATE_KEYS) or bool(
        raw.get("rate_history") or raw.get("rates")
    )


def contract_rates(contract: dict[str, Any], default_currency: str) -> list[TrackerRate]:
    """A contract's rate history as dated rates (the undated current rate when no history)."""
    contract_id = _id(contract.get("id"))
    if contract_id is None:
        return []
    currency = _currency(contract, default_currency)
    history = contract.get("rate_history") or contract.get("rates") or []
    found: list[TrackerRate] = []
    if isinstance(history, list):
        for item in history:
            if not isinstance(item, dict):
                continue
            amount = next(
                (_amount(item.get(k)) for k in _RATE_KEYS if item.get(k) is not None), None
            )
            if amount is None:
                continue
            found.append(
                TrackerRate(
                    source=SOURCE,
                    contract_id=contract_id,
                    amount=amount,
                    currency=_currency(item, currency),
                    effective_from=next(
                        (_day(item.get(k)) for k in _DATE_KEYS if item.get(k)), None
                    ),
                )
            )
    if not found:
        amount = next(
            (_amount(contract.get(k)) for k in _RATE_KEYS if contract.get(k) is not None), None
        )
        if amount is not None:
            found.append(
                TrackerRate(
                    source=SOURCE, contract_id=contract_id, amount=amount, currency=currency
                )
            )
    # One rate per start day (the last listed wins), so the rate table never sees a conflict.
    by_day = {r.effective_from: r for r in found}
    return list(by_day.values())


def _viewer_projects(viewer: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    if viewer.get("project_id") is not None:
        ids.append(str(viewer["project_id"]))
    for p in viewer.get("projects") or []:
        pid = p.get("id") if isinstance(p, dict) else p
        if pid is not None:
            ids.append(str(pid))
    return ids


def _viewer_client(viewer: dict[str, Any]) -> dict[str, Any] | None:
    user = viewer.get("user") if isinstance(viewer.get("user"), dict) else viewer
    client_id = _id(user.get("id") if user is not viewer else viewer.get("user_id"))
    client_id = client_id or _id(viewer.get("id"))
    if client_id is None:
        return None
    name = person_name(user) or person_name(viewer) or client_id
    return {"id": client_id, "name": name, "email": user.get("email") or viewer.get("email")}


def sync_catalog(
    workspace_id: int,
    client: WebWorkClient,
    *,
    persist: bool = True,
    missing: Iterable[str] = (),
) -> Catalog:
    """Read projects, contracts and viewers; replace the cached rates; record entities.

    ``persist=False`` (a dry run) reads only: nothing is written anywhere. ``missing``: ids the
    caller refreshed for; those WebWork still does not list are remembered as missing."""
    with db.new_session() as s:
        workspace = s.get(Workspace, workspace_id)
        assert workspace is not None
        tracker_ws = workspace.tracker_workspace_id
        default_currency = WorkspaceSettings.from_dict(workspace.settings).default_currency
    projects_raw = client.projects(tracker_ws)
    viewers_raw = client.project_viewers(tracker_ws)
    try:
        contracts_raw = client.contracts(tracker_ws)
        contracts_forbidden = False
    except Forbidden:
        contracts_raw, contracts_forbidden = [], True
    catalog = _catalog_from(projects_raw, viewers_raw, contracts_raw, default_currency)
    catalog.contracts_listed = not contracts_forbidden
    catalog.rates_visible = catalog.rates_visible and not contracts_forbidden
    wanted = set(missing)
    catalog.missing = {key for key in wanted if key in catalog.unknown(*_split_ids(wanted))}
    if persist:
        _store(workspace_id, catalog)
    return catalog


def _split_ids(keys: Iterable[str]) -> tuple[set[str], set[str]]:
    projects = {k.split(":", 1)[1] for k in keys if k.startswith("project:")}
    contracts = {k.split(":", 1)[1] for k in keys if k.startswith("contract:")}
    return projects, contracts


def _catalog_from(
    projects_raw: list[dict[str, Any]],
    viewers_raw: list[dict[str, Any]],
    contracts_raw: list[dict[str, Any]],
    default_currency: str,
) -> Catalog:
    clients_by_project: dict[str, dict[str, Any]] = {}
    for viewer in sorted(viewers_raw, key=lambda v: str(v.get("id"))):
        client_info = _viewer_client(viewer)
        if client_info is None:
            continue
        for pid in _viewer_projects(viewer):
            clients_by_project.setdefault(pid, client_info)

    rates: list[TrackerRate] = []
    projects: dict[str, dict[str, Any]] = {}
    billable_projects: set[str] = set()
    for raw in projects_raw:
        pid = _id(raw.get("id"))
        if pid is None:
            continue
        billable = raw.get("is_billable")
        billable = None if billable is None else bool(billable)
        if billable is not False:
            billable_projects.add(pid)
        projects[pid] = {
            "name": str(raw.get("name") or pid)[:500],
            "billable": billable,
            "client": clients_by_project.get(pid),
        }
        amount = _amount(raw.get("rate"))
        if amount is not None and amount > 0:
            rates.append(
                TrackerRate(
                    source=SOURCE,
                    project_id=pid,
                    amount=amount,
                    currency=_currency(raw, default_currency),
                )
            )
    relevant = [c for c in contracts_raw if _id(c.get("project_id")) in billable_projects]
    rates_visible = not relevant or any(_has_rate_field(c) for c in relevant)
    for contract in contracts_raw:
        rates.extend(contract_rates(contract, default_currency))
    return Catalog(
        projects=projects,
        contracts={cid for c in contracts_raw if (cid := _id(c.get("id"))) is not None},
        rates_visible=rates_visible,
        synced_at=utcnow().isoformat(),
        rates=rates,
    )


def _store(workspace_id: int, catalog: Catalog) -> None:
    """The catalog's rates replace the cached ones; its projects and clients are recorded."""
    now = utcnow()
    with db.session_scope() as s:
        s.execute(
            delete(TrackerRate).where(
                TrackerRate.workspace_id == workspace_id, TrackerRate.source == SOURCE
            )
        )
        for rate in catalog.rates:
            s.add(
                TrackerRate(
                    workspace_id=workspace_id,
                    source=SOURCE,
                    member_id=rate.member_id,
                    project_id=rate.project_id,
                    contract_id=rate.contract_id,
                    amount=rate.amount,
                    currency=rate.currency,
                    effective_from=rate.effective_from,
                    synced_at=now,
                )
            )
        _record_entities(s, workspace_id, catalog.projects)
    store_for(workspace_id).update_meta(
        catalog=catalog.to_json(), rates_visible=catalog.rates_visible
    )
    # Approvals waiting for a project's billability (or for rows) get another look.
    worker.resume_waiting(workspace_id, WAIT_TRACKER_DATA)


def _record_entities(s: Any, workspace_id: int, projects: dict[str, dict[str, Any]]) -> None:
    """Projects and their clients appear on the mapping page before any approval names them."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for pid, info in projects.items():
        client = info.get("client")
        seen[("project", pid)] = {
            "name": info["name"],
            "email": None,
            "client_id": client["id"] if client else None,
        }
        if client:
            seen[("client", client["id"])] = {
                "name": client["name"],
                "email": client.get("email"),
                "client_id": None,
            }
    upsert_tracker_entities(s, workspace_id, seen)


def _refresh_seconds() -> float:
    value = current_app.config.get("WEBWORK_RATES_REFRESH_SECONDS")
    return DEFAULT_REFRESH_SECONDS if value in (None, "") else float(value)


def _age_seconds(catalog: Catalog) -> float:
    if not catalog.synced_at:
        return float("inf")
    try:
        synced = datetime.fromisoformat(catalog.synced_at)
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - synced).total_seconds()


def cached_catalog(workspace_id: int) -> Catalog | None:
    return Catalog.from_json(store_for(workspace_id).meta().get("catalog"))


def catalog_for(
    workspace_id: int, client: WebWorkClient, *, force: bool = False, persist: bool = True
) -> Catalog:
    """The cached catalog, refreshed from WebWork when older than
    ``WEBWORK_RATES_REFRESH_SECONDS`` (``0``: at every poll)."""
    if not persist:
        return sync_catalog(workspace_id, client, persist=False)
    cached = cached_catalog(workspace_id)
    if cached is not None and not force and _age_seconds(cached) < _refresh_seconds():
        return cached
    # Ids still missing stay remembered: no extra refresh is spent on them until WebWork lists them.
    return sync_catalog(workspace_id, client, missing=cached.missing if cached else ())


def refresh_for_unknown(
    workspace_id: int,
    client: WebWorkClient,
    catalog: Catalog,
    projects: set[str],
    contracts: set[str],
    *,
    persist: bool = True,
) -> Catalog:
    """The catalog, refreshed once if the timesheet names ids it does not know (a contract or
    project created since the last refresh), so no approval is billed at a stale rate or as
    billable by default.

    Single-flight: one refresh per workspace at a time across processes; a caller that waited
    for another's refresh uses its result. Each refresh is a few requests within the user's
    budget; ids still missing afterwards are remembered and cost no further refresh."""
    wanted = catalog.worth_refreshing(projects, contracts)
    if not wanted:
        return catalog
    if not persist:  # a dry run: read, remember in memory only
        fresh = sync_catalog(workspace_id, client, persist=False, missing=catalog.missing | wanted)
        return fresh
    try:
        with advisory_lock(f"webwork-catalog:{workspace_id}", ttl=120.0, timeout=60.0):
            latest = cached_catalog(workspace_id) or catalog
            wanted = latest.worth_refreshing(projects, contracts)
            if not wanted:
                return latest  # refreshed meanwhile by another process
            log.info(
                "WebWork catalog of workspace %s refreshed for %s", workspace_id, sorted(wanted)
            )
            return sync_catalog(workspace_id, client, missing=latest.missing | wanted)
    except LockTimeout:
        raise Unavailable("Waiting for another refresh of WebWork's projects and rates.") from None


def rate_hold_hint(workspace_id: int) -> str | None:
    """Words added to a "needs rate" hold when WebWork hid the rates from the connected user."""
    meta = store_for(workspace_id).meta()
    if meta.get("rates_visible") is False:
        return RATES_NOT_VISIBLE
    return None

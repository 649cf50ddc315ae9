"""What a poll knows of a WebWork workspace besides its timesheets: projects (name, billable,
client) and contracts (ids), cached in the connection's meta (``rates.catalog_for`` reads and
refreshes it; the rates themselves are ``TrackerRate`` rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.models import TrackerRate


@dataclass
class Catalog:
    """What a poll needs to enrich timesheet rows: per project, billable flag and client."""

    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    contracts: set[str] = field(default_factory=set)
    # False when WebWork refused the contract list (no rate permission): contract ids are then
    # never "unknown", since no refresh could make them known.
    contracts_listed: bool = True
    rates_visible: bool = True
    synced_at: str | None = None
    # Ids ("project:101", "contract:5001") a refresh looked for and WebWork did not list: no
    # further refresh is spent on them (regular refreshes keep looking).
    missing: set[str] = field(default_factory=set)
    # Only in memory (the stored copy is the TrackerRate table): a dry run prices with these.
    rates: list[TrackerRate] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "projects": self.projects,
            "contracts": sorted(self.contracts),
            "contracts_listed": self.contracts_listed,
            "rates_visible": self.rates_visible,
            "synced_at": self.synced_at,
            "missing": sorted(self.missing),
        }

    @classmethod
    def from_json(cls, raw: Any) -> Catalog | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("projects"), dict):
            return None
        contracts = raw.get("contracts")
        return cls(
            projects=dict(raw["projects"]),
            # A catalog cached before contracts were kept knows none: treat it as stale.
            contracts={str(c) for c in contracts} if isinstance(contracts, list) else set(),
            contracts_listed=bool(raw.get("contracts_listed", True)),
            rates_visible=bool(raw.get("rates_visible", True)),
            synced_at=raw.get("synced_at") if isinstance(contracts, list) else None,
            missing={str(m) for m in raw.get("missing") or []},
        )

    def unknown(self, projects: set[str], contracts: set[str]) -> set[str]:
        """Which of these project and contract ids this catalog does not know."""
        found = {f"project:{p}" for p in projects if p not in self.projects}
        found |= {
            f"project:{p}" for p in projects if (self.projects.get(p) or {}).get("billable") is None
        }
        if self.contracts_listed:
            found |= {f"contract:{c}" for c in contracts if c not in self.contracts}
        return found

    def worth_refreshing(self, projects: set[str], contracts: set[str]) -> set[str]:
        """Unknown ids a refresh has not already looked for."""
        return self.unknown(projects, contracts) - self.missing

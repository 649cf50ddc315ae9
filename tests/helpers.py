"""Small builders shared by tests (events from the documented fixtures, local mappings)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from connector import db
from connector.models import CustomerMapping, LocalCustomer

EVENTS = Path(__file__).resolve().parent.parent / "webhooks" / "webwork" / "fixtures"

THREE_CUSTOMERS = {
    "cl-globex": ("Globex Corporation", "ap@globex.example"),
    "cl-initech": ("Initech", "billing@initech.example"),
    "cl-umbrella": ("Umbrella Ltd", "finance@umbrella.example"),
}


def event(name: str, **changes: Any) -> dict[str, Any]:
    """A documented example event, e.g. ``event("timesheet_approved__three_customers")``."""
    doc = json.loads((EVENTS / f"{name}.json").read_text())
    doc = copy.deepcopy(doc)
    if "workspace_id" in changes:
        doc["data"]["workspace_id"] = changes.pop("workspace_id")
    for key, value in changes.items():
        doc[key] = value
    return doc


def map_clients_locally(
    workspace_id: int, clients: dict[str, tuple[str, str]] | None = None, currency: str = "USD"
) -> dict[str, str]:
    """Create local customers and map tracker clients to them; returns client id -> customer id."""
    out = {}
    with db.session_scope() as s:
        for client_id, (name, email) in (clients or THREE_CUSTOMERS).items():
            customer = LocalCustomer(
                workspace_id=workspace_id,
                name=name,
                email=email,
                currency=currency,
                tracker_id=client_id,
            )
            s.add(customer)
            s.flush()
            s.add(
                CustomerMapping(
                    workspace_id=workspace_id,
                    books="local",  # the ledger's customers
                    kind="client",
                    tracker_id=client_id,
                    customer_id=str(customer.id),
                    customer_name=name,
                    customer_currency=currency,
                )
            )
            out[client_id] = str(customer.id)
    return out

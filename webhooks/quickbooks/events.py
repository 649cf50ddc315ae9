"""QuickBooks notifications as the status sync reads them: (company, invoice, operation).

Intuit sends two shapes and is moving from the first to the second (both are accepted):

* legacy: ``{"eventNotifications": [{"realmId": "...", "dataChangeEvent": {"entities":
  [{"name": "Invoice", "id": "130", "operation": "Update", "lastUpdated": "..."}]}}]}``
* CloudEvents: ``[{"specversion": "1.0", "id": "...", "type": "qbo.invoice.updated.v1",
  "intuitaccountid": "<realm>", "intuitentityid": "130", "time": "...", "data": {}}]``

A notification only names what changed; the job reads the invoice itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.validation import JsonError, parse_json

# CloudEvents verbs -> the legacy operation names.
_CLOUD_OPERATIONS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "voided": "Void",
    "emailed": "Emailed",
    "merged": "Merge",
}
INVOICE_OPERATIONS = frozenset({"Create", "Update", "Delete", "Void", "Emailed"})


class EventError(ValueError):
    """Authentic but unreadable: neither of Intuit's notification shapes."""


@dataclass(frozen=True)
class InvoiceChange:
    realm_id: str
    invoice_id: str
    operation: str


def _legacy(doc: dict[str, Any]) -> list[InvoiceChange]:
    notifications = doc.get("eventNotifications")
    if not isinstance(notifications, list):
        raise EventError("eventNotifications is not a list")
    changes = []
    for note in notifications:
        if not isinstance(note, dict):
            continue
        realm = note.get("realmId")
        entities = (note.get("dataChangeEvent") or {}).get("entities") or []
        if not isinstance(realm, str | int) or not isinstance(entities, list):
            continue
        for entity in entities:
            if (
                isinstance(entity, dict)
                and entity.get("name") == "Invoice"
                and entity.get("operation") in INVOICE_OPERATIONS
                and entity.get("id") not in (None, "")
            ):
                changes.append(InvoiceChange(str(realm), str(entity["id"]), entity["operation"]))
    return changes


def _cloud_events(events: list[Any]) -> list[InvoiceChange]:
    changes = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            continue
        parts = event["type"].split(".")  # qbo.invoice.updated.v1
        if len(parts) < 3 or parts[0] != "qbo" or parts[1].lower() != "invoice":
            continue
        operation = _CLOUD_OPERATIONS.get(parts[2].lower())
        realm, entity_id = event.get("intuitaccountid"), event.get("intuitentityid")
        if (
            operation in INVOICE_OPERATIONS
            and realm not in (None, "")
            and entity_id
            not in (
                None,
                "",
            )
        ):
            changes.append(InvoiceChange(str(realm), str(entity_id), str(operation)))
    return changes


def parse_notification(body: bytes) -> list[InvoiceChange]:
    """The invoice changes a notification announces (other entities are left out)."""
    try:
        doc: Any = parse_json(body)
    except JsonError as exc:
        raise EventError(f"the body is not JSON: {exc}") from None
    if isinstance(doc, list):
        return _cloud_events(doc)
    if isinstance(doc, dict) and "eventNotifications" in doc:
        return _legacy(doc)
    if isinstance(doc, dict) and "specversion" in doc:
        return _cloud_events([doc])
    raise EventError("neither eventNotifications nor a CloudEvents list")

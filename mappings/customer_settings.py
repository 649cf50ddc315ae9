"""Per accounting-customer overrides of the workspace settings (``CustomerSettings`` rows).

A customer may bill differently from the rest of the workspace: its own grouping, rounding
increment, payment terms or tax code. ``None`` (an empty form field, JSON ``null``) means "use
the workspace's setting". The rules are the workspace's own (``connector.settings``), applied
field by field, so a value valid in Settings is valid here and vice versa; every error names the
field. The pipeline reads these rows when it bills (``load_mappings``) and when it builds the
provider request (``draft_invoice``).

Overrides belong to the books the customer id comes from (``connector.books``), like mappings.
A customer gets overrides once some client/project is billed to it, or before that: any customer
the books confirm exists (``lookup``), so a customer's first bill already has its own terms. A
row that outlived its mapping can still be read and cleared. Changes flush, never commit: the
caller commits and then calls ``mappings.service.after_change`` so held approvals are re-billed
with the new settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import books
from connector.models import CustomerMapping, CustomerSettings, Workspace
from connector.providers.base import AccountingCustomer
from connector.settings import SettingsError, WorkspaceSettings, validate_settings
from connector.validation import TAX_CODE_MAX

FIELDS: Final = (
    "grouping",
    "billing_increment",
    "payment_terms_days",
    "tax_code",
    "consolidation",
    "period",
    "week_start",
)


class CustomerSettingsError(SettingsError):
    """An override that cannot be stored; ``field`` names the input to fix."""


@dataclass(frozen=True)
class Overrides:
    grouping: str | None = None
    billing_increment: int | None = None
    payment_terms_days: int | None = None
    tax_code: str | None = None
    consolidation: str | None = None
    period: str | None = None
    week_start: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return all(value is None for value in asdict(self).values())

    @classmethod
    def of(cls, row: CustomerSettings | None) -> Overrides:
        if row is None:
            return cls()
        return cls(**{name: getattr(row, name) for name in FIELDS})


@dataclass(frozen=True)
class CustomerView:
    """One mapped customer with its overrides and what applies once they are merged."""

    customer_id: str
    customer_name: str
    overrides: Overrides
    workspace: WorkspaceSettings

    @property
    def effective(self) -> dict[str, Any]:
        base = self.workspace.to_dict()
        out = {name: base[name] for name in FIELDS}
        out.update({k: v for k, v in self.overrides.to_dict().items() if v is not None})
        return out

    def to_json(self) -> dict[str, Any]:
        base = self.workspace.to_dict()
        return {
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "overrides": self.overrides.to_dict(),
            "workspace": {name: base[name] for name in FIELDS},
            "effective": self.effective,
        }


# --- validation ----------------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validate_overrides(values: Mapping[str, Any]) -> Overrides:
    """Check every field with the workspace rules; raise CustomerSettingsError naming the field.

    Omitted fields, ``None`` and empty strings mean "use the workspace's setting".
    """
    for name in values:
        if name not in FIELDS:
            raise CustomerSettingsError(
                name, f"is not a per-customer setting ({', '.join(FIELDS)})"
            )
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = values.get(name)
        if _blank(value):
            out[name] = None
            continue
        if isinstance(value, bool):  # JSON true/false are not numbers or codes
            raise CustomerSettingsError(name, "must not be true/false")
        if name in ("billing_increment", "payment_terms_days") and isinstance(value, float):
            if not value.is_integer():
                raise CustomerSettingsError(name, "must be a whole number")
            value = int(value)
        if name in ("tax_code", "consolidation", "period", "week_start"):
            if not isinstance(value, str):
                raise CustomerSettingsError(name, "must be a string or empty")
            if name == "tax_code" and len(value.strip()) > TAX_CODE_MAX:
                raise CustomerSettingsError(name, f"must be at most {TAX_CODE_MAX} characters")
        if name == "billing_increment" and str(value).strip().lower() == "none":
            out[name] = None
            continue
        try:
            # The workspace's own rules, one field at a time (the others stay valid defaults).
            checked = validate_settings({name: value}, WorkspaceSettings())
        except SettingsError as exc:
            raise CustomerSettingsError(exc.field, exc.message) from None
        out[name] = getattr(checked, name)
    return Overrides(**out)


# --- reading -------------------------------------------------------------------------------------
Lookup = Callable[[str], AccountingCustomer | None]


def _books(s: Session, workspace_id: int) -> str | None:
    ws = s.get(Workspace, workspace_id)
    return books.current_key(s, workspace_id, ws.provider) if ws is not None else None


def get_row(s: Session, workspace_id: int, customer_id: str) -> CustomerSettings | None:
    return s.scalars(
        select(CustomerSettings).where(
            CustomerSettings.workspace_id == workspace_id,
            CustomerSettings.books == _books(s, workspace_id),
            CustomerSettings.customer_id == customer_id,
        )
    ).one_or_none()


def mapped_customers(s: Session, workspace_id: int) -> dict[str, str]:
    """customer id -> name for every customer a client/project of the workspace bills to."""
    rows = s.execute(
        select(CustomerMapping.customer_id, CustomerMapping.customer_name)
        .where(
            CustomerMapping.workspace_id == workspace_id,
            CustomerMapping.books == _books(s, workspace_id),
        )
        .order_by(CustomerMapping.updated_at)
    )
    return {customer_id: name for customer_id, name in rows}


def _workspace_settings(s: Session, workspace_id: int) -> WorkspaceSettings:
    ws = s.get(Workspace, workspace_id)
    return WorkspaceSettings.from_dict(ws.settings if ws else None)


def get(
    s: Session, workspace_id: int, customer_id: str, lookup: Lookup | None = None
) -> CustomerView | None:
    """The customer's overrides, or None when neither the workspace nor (with ``lookup``, the
    provider's ``get_customer``) the books know the customer."""
    customer_id = str(customer_id or "").strip()
    name = mapped_customers(s, workspace_id).get(customer_id)
    row = get_row(s, workspace_id, customer_id)
    if name is None and row is None:
        found = lookup(customer_id) if lookup is not None and customer_id else None
        if found is None:
            return None
        name = found.name
    return CustomerView(
        customer_id=customer_id,
        customer_name=name or customer_id,
        overrides=Overrides.of(row),
        workspace=_workspace_settings(s, workspace_id),
    )


def list_customers(s: Session, workspace_id: int) -> list[CustomerView]:
    """Every mapped customer (and any with overrides), by name."""
    names = mapped_customers(s, workspace_id)
    rows = {
        r.customer_id: r
        for r in s.scalars(
            select(CustomerSettings).where(
                CustomerSettings.workspace_id == workspace_id,
                CustomerSettings.books == _books(s, workspace_id),
            )
        )
    }
    workspace = _workspace_settings(s, workspace_id)
    views = [
        CustomerView(
            customer_id=customer_id,
            customer_name=names.get(customer_id, customer_id),
            overrides=Overrides.of(rows.get(customer_id)),
            workspace=workspace,
        )
        for customer_id in {*names, *rows}
    ]
    return sorted(views, key=lambda v: (v.customer_name.lower(), v.customer_id))


# --- changing ------------------------------------------------------------------------------------
def set_overrides(
    s: Session,
    workspace_id: int,
    customer_id: str,
    values: Mapping[str, Any],
    lookup: Lookup | None = None,
) -> CustomerView:
    """Replace the customer's overrides with ``values`` (omitted = workspace default). A
    customer no client/project is billed to yet must exist in the books (``lookup``).

    Flushes, does not commit. All-empty overrides remove the row.
    """
    customer_id = str(customer_id or "").strip()
    key = _books(s, workspace_id)
    view = get(s, workspace_id, customer_id, lookup) if key is not None else None
    if view is None:
        raise CustomerSettingsError(
            "customer_id",
            "is not a customer of the accounting system this workspace bills to"
            if lookup is not None
            else "no client or project of this workspace is billed to this customer",
        )
    overrides = validate_overrides(values)
    row = get_row(s, workspace_id, customer_id)
    if overrides.empty:
        if row is not None:
            s.delete(row)
    else:
        if row is None:
            row = CustomerSettings(workspace_id=workspace_id, books=key, customer_id=customer_id)
            s.add(row)
        for name, value in overrides.to_dict().items():
            setattr(row, name, value)
    s.flush()
    return CustomerView(
        customer_id=customer_id,
        customer_name=view.customer_name,
        overrides=overrides,
        workspace=view.workspace,
    )


def clear(s: Session, workspace_id: int, customer_id: str) -> bool:
    """Back to the workspace's settings; False when there was nothing to clear."""
    row = get_row(s, workspace_id, str(customer_id or "").strip())
    if row is None:
        return False
    s.delete(row)
    s.flush()
    return True

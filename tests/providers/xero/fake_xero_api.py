"""The Accounting API endpoints of the fake Xero (``fake_xero.FakeXero`` dispatches here)."""

from __future__ import annotations

import copy
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from tests.providers.xero.fake_xero import (
    Answer,
    ms_date,
    problem,
    validation_error,
)
from tests.providers.xero.openapi_check import validate_element

if TYPE_CHECKING:
    from tests.providers.xero.fake_xero import FakeXero

CENT = Decimal("0.01")
EDITABLE = ("DRAFT", "SUBMITTED")


def _arg(query: dict[str, list[str]], name: str, default: str = "") -> str:
    for key, values in query.items():
        if key.lower() == name.lower():
            return values[0]
    return default


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in row.items() if not k.startswith("_")}


def _schema_problem(kind: str, element: Any) -> Answer | None:
    errors = validate_element(kind, element)
    if errors:
        # A test must fail loudly: what we sent is not what Xero's schema allows.
        raise AssertionError(f"{kind} body breaks Xero's OpenAPI schema: {errors}")
    return None


def route(
    fake: FakeXero,
    method: str,
    path: str,
    query: dict[str, list[str]],
    doc: Any,
    tenant: str,
) -> Answer:
    with fake.lock:
        if method == "GET" and path == "Organisation":
            return organisation(fake, tenant)
        if method == "GET" and path == "Currencies":
            org = fake.orgs[tenant]
            rows = [{"Code": code, "Description": code} for code in sorted(org.currencies)]
            return 200, {}, {"Currencies": rows}
        if method == "GET" and path in ("Accounts", "Items"):
            return codes(fake, path, query, tenant)
        if path == "Contacts":
            if method == "GET":
                return list_contacts(fake, query, tenant)
            return create_contacts(fake, doc, tenant)
        if method == "GET" and path.startswith("Contacts/"):
            row = fake.contacts.get(path.split("/", 1)[1])
            if row is None or row["_tenant"] != tenant:
                return 404, {}, "The resource you're looking for cannot be found"
            return 200, {}, {"Contacts": [_public(row)]}
        if path == "Invoices":
            if method == "GET":
                return list_invoices(fake, query, tenant)
            return create_invoices(fake, doc, tenant)
        if path.startswith("Invoices/"):
            row = fake.invoices.get(path.split("/", 1)[1])
            if row is None or row["_tenant"] != tenant:
                return 404, {}, "The resource you're looking for cannot be found"
            if method == "GET":
                return 200, {}, {"Invoices": [_public(row)]}
            return update_invoice(fake, row, doc)
    return problem(404, "Not Found", f"no route {method} {path}")


def organisation(fake: FakeXero, tenant: str) -> Answer:
    org = fake.orgs[tenant]
    return (
        200,
        {},
        {
            "Organisations": [
                {
                    "OrganisationID": tenant,
                    "Name": org.name,
                    "LegalName": org.name,
                    "BaseCurrency": org.base_currency,
                    "CountryCode": "NZ",
                    "ShortCode": org.short_code,
                    "OrganisationType": "COMPANY",
                    "IsDemoCompany": False,
                    "OrganisationStatus": "ACTIVE",
                }
            ]
        },
    )


def codes(fake: FakeXero, path: str, query: dict[str, list[str]], tenant: str) -> Answer:
    match = re.fullmatch(r'Code=="(.*)"', _arg(query, "where"))
    wanted = match.group(1) if match else None
    if path == "Accounts":
        rows = [
            {
                "AccountID": str(uuid.uuid5(uuid.NAMESPACE_OID, code)),
                "Code": code,
                "Name": "Sales" if code == "200" else "Other Revenue",
                "Type": "REVENUE",
                "Class": "REVENUE",
                "Status": "ACTIVE",
            }
            for code in fake.orgs[tenant].accounts
        ]
        rows.append(
            {
                "AccountID": str(uuid.uuid4()),
                "Code": "090",
                "Name": "Business Bank",
                "Type": "BANK",
                "Class": "ASSET",
                "Status": "ACTIVE",
            }
        )
        return 200, {}, {"Accounts": [r for r in rows if wanted in (None, r["Code"])]}
    items = [
        {"ItemID": str(uuid.uuid4()), "Code": code, "Name": code}
        for code in fake.orgs[tenant].items
    ]
    return 200, {}, {"Items": [r for r in items if wanted in (None, r["Code"])]}


def list_contacts(fake: FakeXero, query: dict[str, list[str]], tenant: str) -> Answer:
    rows = [r for r in fake.contacts.values() if r["_tenant"] == tenant]
    if _arg(query, "includeArchived").lower() != "true":
        rows = [r for r in rows if r["ContactStatus"] == "ACTIVE"]
    term = _arg(query, "searchTerm").lower()
    if term:
        rows = [
            r
            for r in rows
            if term in r["Name"].lower() or term in str(r.get("EmailAddress") or "").lower()
        ]
    where = _arg(query, "where")
    named = re.fullmatch(r'Name=="(.*)"', where)
    if named:
        rows = [r for r in rows if r["Name"] == named.group(1).replace('\\"', '"')]
    rows.sort(key=lambda r: r["Name"].lower())
    page, size = int(_arg(query, "page", "1")), int(_arg(query, "pageSize", "100"))
    chosen = rows[(page - 1) * size : page * size]
    return 200, {}, {"Contacts": [_public(r) for r in chosen]}


def create_contacts(fake: FakeXero, doc: Any, tenant: str) -> Answer:
    created = []
    for element in doc["Contacts"]:
        _schema_problem("Contact", element)
        name = str(element.get("Name") or "").strip()
        taken = any(
            r["Name"].lower() == name.lower() and r["ContactStatus"] == "ACTIVE"
            for r in fake.contacts.values()
            if r["_tenant"] == tenant
        )
        if taken:
            return validation_error(
                element,
                f"The contact name {name} is already assigned to another contact. The contact "
                "name must be unique across all active contacts.",
            )
        currency = element.get("DefaultCurrency")
        if currency and currency not in fake.orgs[tenant].currencies:
            return validation_error(element, f"The currency {currency} is not enabled.")
        row = {
            **element,
            "ContactID": str(uuid.uuid4()),
            "ContactStatus": "ACTIVE",
            "UpdatedDateUTC": ms_date(fake.clock()),
            "_tenant": tenant,
        }
        fake.contacts[row["ContactID"]] = row
        created.append(_public(row))
    return 200, {}, {"Contacts": created}


def _priced(lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Decimal]:
    total = Decimal(0)
    out = []
    for line in lines:
        line = dict(line)
        line.setdefault("LineItemID", str(uuid.uuid4()))
        if "Quantity" in line or "UnitAmount" in line:
            quantity = Decimal(str(line.get("Quantity", 1)))
            unit = Decimal(str(line.get("UnitAmount", 0)))
            for name, value in (("Quantity", quantity), ("UnitAmount", unit)):
                exponent = value.normalize().as_tuple().exponent
                assert isinstance(exponent, int) and exponent >= -4, f"{name} {value}: > 4 dp"
            amount = (quantity * unit).quantize(CENT, rounding=ROUND_HALF_UP)
            line["LineAmount"] = float(amount)
            total += amount
        out.append(line)
    return out, total


def _line_problems(fake: FakeXero, lines: list[dict[str, Any]], tenant: str) -> list[str]:
    org = fake.orgs[tenant]
    problems = [
        f"Account code '{line['AccountCode']}' is not a valid code for this document."
        for line in lines
        if line.get("AccountCode") and line["AccountCode"] not in org.accounts
    ]
    problems += [
        f"Item code '{line['ItemCode']}' is not valid."
        for line in lines
        if line.get("ItemCode") and line["ItemCode"] not in org.items
    ]
    return problems


def create_invoices(fake: FakeXero, doc: Any, tenant: str) -> Answer:
    created = []
    for element in doc["Invoices"]:
        _schema_problem("Invoice", element)
        assert element.get("Type") == "ACCREC" and element.get("Status") == "DRAFT", element
        contact = fake.contacts.get(element["Contact"]["ContactID"])
        if contact is None or contact["_tenant"] != tenant:
            return validation_error(element, "Contact not found.")
        problems = []
        if contact["ContactStatus"] != "ACTIVE":
            problems.append(f"The contact {contact['Name']} has been archived.")
        currency = element.get("CurrencyCode") or fake.orgs[tenant].base_currency
        if currency not in fake.orgs[tenant].currencies:
            problems.append(f"The currency {currency} is not enabled for this organisation.")
        problems += _line_problems(fake, element.get("LineItems") or [], tenant)
        if problems:
            return validation_error(element, *problems)
        lines, total = _priced(element.get("LineItems") or [])
        invoice_id = str(uuid.uuid4())
        row = {
            **element,
            "InvoiceID": invoice_id,
            "InvoiceNumber": f"INV-{fake.next_number:04d}",
            "Contact": {"ContactID": contact["ContactID"], "Name": contact["Name"]},
            "CurrencyCode": currency,
            "LineItems": lines,
            "SubTotal": float(total),
            "TotalTax": 0.0,
            "Total": float(total),
            "AmountDue": float(total),
            "AmountPaid": 0.0,
            "AmountCredited": 0.0,
            "UpdatedDateUTC": ms_date(fake.clock()),
            "_tenant": tenant,
        }
        fake.next_number += 1
        fake.invoices[invoice_id] = row
        created.append(_public(row))
    return 200, {}, {"Invoices": created}


def list_invoices(fake: FakeXero, query: dict[str, list[str]], tenant: str) -> Answer:
    rows = [r for r in fake.invoices.values() if r["_tenant"] == tenant]
    ids = {i.strip().lower() for i in _arg(query, "IDs").split(",") if i.strip()}
    if ids:
        rows = [r for r in rows if r["InvoiceID"].lower() in ids]
    contacts = {c.strip() for c in _arg(query, "ContactIDs").split(",") if c.strip()}
    if contacts:
        rows = [r for r in rows if r["Contact"]["ContactID"] in contacts]
    statuses = {s.strip() for s in _arg(query, "Statuses").split(",") if s.strip()}
    if statuses:
        rows = [r for r in rows if r["Status"] in statuses]
    term = _arg(query, "searchTerm").lower()
    if term:
        rows = [
            r
            for r in rows
            if term in str(r.get("Reference") or "").lower()
            or term in str(r.get("InvoiceNumber") or "").lower()
        ]
    page, size = int(_arg(query, "page", "1")), int(_arg(query, "pageSize", "100"))
    chosen = [_public(r) for r in rows[(page - 1) * size : page * size]]
    if _arg(query, "summaryOnly").lower() == "true":
        for row in chosen:
            row.pop("LineItems", None)
    return 200, {}, {"Invoices": chosen}


def update_invoice(fake: FakeXero, row: dict[str, Any], doc: Any) -> Answer:
    element = doc["Invoices"][0]
    _schema_problem("Invoice", element)
    if row["Status"] not in EDITABLE:
        return validation_error(
            element,
            "This document cannot be edited as it has a payment or credit note allocated "
            "to it, or it is not of a valid status for modification.",
        )
    if element.get("Status") == "DELETED":
        row["Status"] = "DELETED"
    elif "LineItems" in element:
        problems = _line_problems(fake, element["LineItems"], row["_tenant"])
        if problems:
            return validation_error(element, *problems)
        known = {line["LineItemID"]: line for line in row["LineItems"]}
        merged = [
            {**known.get(line.get("LineItemID", ""), {}), **line} for line in element["LineItems"]
        ]
        lines, total = _priced(merged)
        row.update(LineItems=lines, SubTotal=float(total), Total=float(total))
        row["AmountDue"] = float(total)
    row["UpdatedDateUTC"] = ms_date(fake.clock() + len(fake.calls) / 1000)
    return 200, {}, {"Invoices": [_public(row)]}


# --- what finance does in Xero (tests call these directly) ------------------------------------
def approve(fake: FakeXero, invoice_id: str) -> None:
    fake.invoices[invoice_id]["Status"] = "AUTHORISED"


def pay(fake: FakeXero, invoice_id: str, amount: Decimal) -> None:
    row = fake.invoices[invoice_id]
    paid = Decimal(str(row["AmountPaid"])) + amount
    due = Decimal(str(row["Total"])) - paid
    row.update(AmountPaid=float(paid), AmountDue=float(due))
    row["Status"] = "PAID" if due <= 0 else "AUTHORISED"

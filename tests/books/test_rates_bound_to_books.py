"""Issue #18 follow-up at the wire: a rate scoped to an accounting customer belongs to the books
that customer id came from.

The ledger's customer "6" and QuickBooks' customer "6" are different businesses. A rate made for
one must never price the other's invoice after a switch: billing uses only the customer rates of
the books the workspace bills to now; the others stay visible (read-only, named by their books)
and come back when the workspace returns to those books.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connector import db, pipeline
from connector.models import Rate, Workspace
from mappings import rates
from tests.app_fixtures import csrf_token
from tests.books.test_switching_books import (
    REALM_A,
    api,
    companies,
    connect_qbo,
    connect_stripe,
    days,
    drafts,
    stripe_wire,
)
from tests.consolidation.helpers import approval
from tests.helpers import map_clients_locally
from tests.providers.qbo_fixtures import customer_row

__all__ = ["companies", "stripe_wire"]  # fixtures shared with the switching tests


def unpriced(ts_id: str, member: str, day: int) -> dict[str, Any]:
    """An approval whose rows carry no rate from the tracker: the admin's rates price it."""
    event = approval(ts_id, member, days(day))
    for rows in event["data"]["timesheet"]["daily_breakdown"].values():
        for row in rows:
            row.pop("rate")
    return event


def add_rate(client: Any, ws: Any, **body: Any) -> Any:
    return client.post("/api/v1/rates", json={"currency": "USD", **body}, headers=ws.auth)


def amounts_sent(company: Any) -> set[Decimal]:
    """Every line amount and unit price in the invoice bodies sent to the company."""
    found: set[Decimal] = set()
    for body in [*company.created_bodies.get("invoice", []), *company.updated_bodies]:
        for line in body.get("Line", []):
            detail = line.get("SalesItemLineDetail") or {}
            for value in (line.get("Amount"), detail.get("UnitPrice")):
                if value is not None:
                    found.add(Decimal(str(value)))
    return found


def test_a_ledger_customer_rate_never_prices_the_quickbooks_customer_with_the_same_id(
    app: Any, client: Any, workspace: Any, post_event: Any, companies: Any
) -> None:
    a, _ = companies
    ledger_id = map_clients_locally(workspace.id, {"cl-acme": ("Acme Corp", "ap@acme.example")})[
        "cl-acme"
    ]
    assert add_rate(client, workspace, amount="100.00").status_code == 201  # workspace default
    res = add_rate(client, workspace, amount="200.00", customer_id=ledger_id)
    assert res.status_code == 201, res.json
    post_event(workspace, unpriced("ts-1", "u-ada", 0))
    assert drafts()[0].books == "local" and drafts()[0].total == Decimal("200.00")

    # In company A the same id is another business, mapped to the same tracker client.
    a.customers[ledger_id] = customer_row(ledger_id, "Bill's Windsurf Shop")
    connect_qbo(workspace, app, REALM_A)
    res = client.put(
        "/api/v1/mappings/client/cl-acme", json={"customer_id": ledger_id}, headers=workspace.auth
    )
    assert res.status_code == 200, res.json
    post_event(workspace, unpriced("ts-2", "u-bob", 1))

    (invoice,) = a.invoices.values()
    assert invoice["CustomerRef"]["value"] == ledger_id
    assert Decimal(str(invoice["TotalAmt"])) == Decimal("100.00")  # the workspace default
    assert Decimal("100.00") in amounts_sent(a)
    assert Decimal("200.00") not in amounts_sent(a)

    # The ledger's rate is history: listed apart, named by its books, read-only.
    body = api(client, workspace, "GET", "/rates").json
    assert body["books"] == f"quickbooks:sandbox:{REALM_A}"
    assert [(r["amount"], r["customer_id"]) for r in body["rates"]] == [("100.00", None)]
    (old,) = body["history"]
    assert (old["amount"], old["customer_id"], old["books"]) == ("200.00", ledger_id, "local")
    assert old["books_name"] == "the built-in ledger" and old["applies"] is False
    one = api(client, workspace, "GET", f"/rates/{old['id']}").json["rate"]
    assert one["applies"] is False
    res = client.put(
        f"/api/v1/rates/{old['id']}",
        json={"amount": "210.00", "currency": "USD", "customer_id": ledger_id},
        headers=workspace.auth,
    )
    assert res.status_code == 409, res.json
    assert "built-in ledger" in res.json["detail"]
    assert client.delete(f"/api/v1/rates/{old['id']}", headers=workspace.auth).status_code == 409

    # A rate for QuickBooks' own customer with that id is a new rate, no clash with history.
    res = add_rate(client, workspace, amount="150.00", customer_id=ledger_id)
    assert res.status_code == 201, res.json
    assert res.json["rate"]["books"] == f"quickbooks:sandbox:{REALM_A}"
    post_event(workspace, unpriced("ts-3", "u-ada", 2))
    totals = sorted(Decimal(str(i["TotalAmt"])) for i in a.invoices.values())
    assert totals == [Decimal("100.00"), Decimal("150.00")]

    # Back to the ledger: its own customer rate applies again, QuickBooks' is history.
    with db.session_scope() as s:
        s.get(Workspace, workspace.id).provider = "local"
    pipeline.on_connection_restored(workspace.id)
    post_event(workspace, unpriced("ts-4", "u-bob", 2))
    assert drafts()[-1].books == "local" and drafts()[-1].total == Decimal("200.00")
    body = api(client, workspace, "GET", "/rates").json
    assert [r["amount"] for r in body["history"]] == ["150.00"]


def test_the_rates_page_shows_other_books_customer_rates_as_read_only_history(
    app: Any, admin_client: Any, workspace: Any, post_event: Any, stripe_wire: Any
) -> None:
    ledger_id = map_clients_locally(workspace.id, {"cl-acme": ("Acme Ledger Ltd", "a@x.example")})[
        "cl-acme"
    ]
    with db.session_scope() as s:
        rates.create_rate(s, workspace.id, {"amount": "100.00", "currency": "USD"})
        old = rates.create_rate(
            s, workspace.id, {"amount": "200.00", "currency": "USD", "customer_id": ledger_id}
        ).id
    post_event(workspace, approval("ts-1", "u-ada", days(0)))  # the tracker names cl-acme
    connect_stripe(workspace, app, "acct_1B", "rk_test_51AccountBkeyforthetests")

    base = f"/workspaces/{workspace.id}/rates"
    page = admin_client.get(base).get_data(as_text=True)
    current, _, history = page.partition('id="rate-history"')
    assert "200.00" not in current and "100.00 USD/h" in current
    row = history[history.index(f'data-history-rate-id="{old}"') :].split("</tr>")[0]
    assert "Acme Ledger Ltd" in row and f"#{ledger_id}" in row
    assert "the built-in ledger" in row and "200.00 USD/h" in row
    assert f"{base}/{old}" not in page  # no edit link, no delete button

    res = admin_client.get(f"{base}/{old}")  # typed by hand: back to the list, saying why
    assert res.status_code == 302 and res.location.endswith(base)
    said = admin_client.get(base).get_data(as_text=True)
    assert "is for a customer in the built-in ledger" in said
    assert "now bills to Stripe account acct_1B (test mode)" in said
    res = admin_client.post(f"{base}/{old}/delete", data={"csrf_token": csrf_token(admin_client)})
    assert res.status_code == 302
    with db.session_scope() as s:
        assert s.get(Rate, old) is not None  # history is read-only

    # Item 2: the Customers page's history names the tracker client, its id beside it.
    customers = admin_client.get(f"/workspaces/{workspace.id}/mappings").get_data(as_text=True)
    row = customers[customers.index("data-history-id=") :].split("</tr>")[0]
    assert "Acme Corp<br>" in row and "client cl-acme" in row and "Acme Ledger Ltd" in row
    said = app.test_cli_runner().invoke(args=["mappings", "history", str(workspace.id)]).output
    assert "Acme Corp (cl-acme) -> Acme Ledger Ltd" in said and "the built-in ledger" in said

"""The checklist's rates step counts only rates that apply to the books billed now (issue 21,
leftover of issue 18): a customer rate of other books is history and prices nothing."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from connector import db
from connector.models import Rate, Workspace


def _rates_state(admin_client: Any, ws_id: int) -> str:
    html = admin_client.get(f"/workspaces/{ws_id}").get_data(as_text=True)
    return dict(re.findall(r'data-step="(\w+)" data-state="(\w+)"', html))["rates"]


def _add_rate(ws_id: int, *, customer_id: str | None, books: str | None) -> None:
    with db.session_scope() as s:
        s.add(
            Rate(
                workspace_id=ws_id,
                customer_id=customer_id,
                books=books,
                amount=Decimal("90"),
                currency="USD",
            )
        )


def test_rates_of_other_books_do_not_tick_the_rates_step(admin_client: Any, workspace: Any):
    with db.session_scope() as s:
        assert s.get(Workspace, workspace.id).provider == "local"
    assert _rates_state(admin_client, workspace.id) == "todo"

    # A customer rate made while billing a QuickBooks company: history for the ledger.
    _add_rate(workspace.id, customer_id="6", books="quickbooks:sandbox:9130")
    assert _rates_state(admin_client, workspace.id) == "todo"

    # A customer rate of the ledger applies.
    _add_rate(workspace.id, customer_id="6", books="local")
    assert _rates_state(admin_client, workspace.id) == "done"


def test_a_rate_naming_no_customer_applies_in_any_books(admin_client: Any, workspace: Any):
    _add_rate(workspace.id, customer_id=None, books=None)
    assert _rates_state(admin_client, workspace.id) == "done"

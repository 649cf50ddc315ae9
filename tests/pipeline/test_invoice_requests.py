"""draft_invoice is pure: the request a Draft row becomes depends on its arguments only.

No app, no database: the rows are plain unsaved model objects, so a test that passes here
proves nothing is read behind the function's back (a retry days later sends the same request).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from connector import billing
from connector.models import CustomerSettings, Draft, Timesheet, Workspace
from connector.pipeline.invoice_requests import draft_invoice, line_to_json

LINE = {
    "description": "Ada Lovelace - Website (2025-03-03..2025-03-04): 3 h",
    "minutes": 180,
    "tracked_minutes": 175,
    "quantity": "3",
    "unit_price": "27.50",
    "amount": "82.50",
    "service_date": None,
    "date_from": "2025-03-03",
    "date_to": "2025-03-04",
    "project_id": "p-web",
    "project_name": "Website",
    "task_name": None,
    "rate_source": "project",
}


def rows(*, period_invoice_id: int | None = None) -> tuple[Workspace, Timesheet, Draft]:
    workspace = Workspace(
        id=7, settings={"payment_terms_days": 30, "tax_code": "TAX", "default_currency": "USD"}
    )
    ts_row = Timesheet(
        timesheet_id="ts-42",
        member={"id": "u-ada", "name": "Ada Lovelace"},
        date_from=date(2025, 3, 3),
        date_to=date(2025, 3, 9),
    )
    row = Draft(
        id=11,
        key="ti-abc",
        customer_id="c-1",
        customer_name="Acme",
        currency="USD",
        lines=[LINE],
        total=Decimal("82.50"),
        created_at=datetime(2025, 3, 10, 23, 30, tzinfo=UTC),
        period_invoice_id=period_invoice_id,
    )
    return workspace, ts_row, row


def test_the_same_row_gives_the_same_request_without_any_database() -> None:
    first = draft_invoice(*rows(), None)
    again = draft_invoice(*rows(), None)
    assert first == again
    assert first.key == "ti-abc"
    assert first.total == Decimal("82.50")
    assert first.issue_date == date(2025, 3, 10)  # the row's creation day, not today
    assert first.payment_terms_days == 30 and first.tax_code == "TAX"
    assert first.memo == "Hours worked by Ada Lovelace, 2025-03-03 to 2025-03-09. Timesheet ts-42."
    (line,) = first.lines
    # The billing words only: Stripe (no quantity column) adds "x rate/h" in its own payloads.
    assert line.description == "Ada Lovelace - Website (2025-03-03..2025-03-04): 3 h"
    from connector.providers.stripe import line_description

    assert line_description(line, "USD").endswith("3 h x 27.50 USD/h")
    assert (line.quantity, line.unit_price, line.amount) == (
        Decimal("3"),
        Decimal("27.50"),
        Decimal("82.50"),
    )


def test_a_customers_overrides_replace_the_workspace_settings() -> None:
    overrides = CustomerSettings(payment_terms_days=0, tax_code="EXEMPT")
    invoice = draft_invoice(*rows(), overrides)
    assert invoice.payment_terms_days == 0  # 0 is an override, not "unset"
    assert invoice.tax_code == "EXEMPT"
    unset = draft_invoice(*rows(), CustomerSettings(payment_terms_days=None, tax_code=""))
    assert unset.payment_terms_days == 30 and unset.tax_code == "TAX"


def test_a_period_invoice_line_names_its_timesheet_and_takes_the_given_memo() -> None:
    memo = "Hours worked 2025-03-03 to 2025-03-09. Timesheets: ts-42 (Ada Lovelace)."
    invoice = draft_invoice(*rows(period_invoice_id=3), None, memo)
    assert invoice.memo == memo
    assert invoice.metadata["consolidated"] == "1"
    (line,) = invoice.lines
    assert line.description.endswith("(timesheet ts-42)")
    assert line.metadata == {
        "project_id": "p-web",
        "member": "Ada Lovelace",
        "timesheet_id": "ts-42",
        "period": "2025-03-03 to 2025-03-09",
    }


def test_a_billed_line_is_stored_as_json_and_comes_back_as_the_same_line() -> None:
    line = billing.PlannedLine(
        description="Ada Lovelace - Website (2025-03-03..2025-03-04): 3 h",
        minutes=180,
        quantity=Decimal("3"),
        unit_price=Decimal("27.50"),
        amount=Decimal("82.50"),
        service_date=None,
        date_from=date(2025, 3, 3),
        date_to=date(2025, 3, 4),
        project_id="p-web",
        project_name="Website",
        task_name=None,
        rate_source="project",
        tracked_minutes=175,
    )
    assert line_to_json(line) == LINE

"""The billing engine's value types are named apart from the stored rows they become."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from connector import billing, models


def _classes(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__
    }


def _billing_classes() -> set[str]:
    found: set[str] = set()
    for info in pkgutil.iter_modules(billing.__path__, "connector.billing."):
        found |= _classes(importlib.import_module(info.name))
    return found


def test_no_billing_type_shares_a_name_with_a_model() -> None:
    # billing.Draft and billing.Timesheet once read, in the pipeline, as if they were the
    # models.Draft and models.Timesheet rows beside them.
    assert _billing_classes() & _classes(models) == set()
    assert {"TimesheetInput", "DraftPlan", "PlannedLine"} <= _billing_classes()

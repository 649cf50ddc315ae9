"""Validate a body against Xero's published OpenAPI schema (kept in ``openapi/`` as test data).

The subset was cut from XeroAPI/Xero-OpenAPI's ``xero_accounting.yaml`` by ``openapi/extract.py``
(its ``info`` names the commit). It is in the repository so CI always has it: absent, the check
skips with the reason, unless ``XERO_OPENAPI_REQUIRED`` is set (``.ci/run`` sets it), then fails.
Writes are checked with OpenAPI 3.0 *write* semantics: a read-only field (``Total``,
``AmountDue``...) sent to Xero is an error, as is a wrong type, enum value or uuid.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

SUBSET = Path(__file__).parent / "openapi" / "xero_accounting_subset.json"


@functools.lru_cache(maxsize=1)
def _components() -> dict[str, Any]:
    return json.loads(SUBSET.read_text())["components"]


def schema_present() -> bool:
    return SUBSET.is_file()


def require_schema() -> None:
    if schema_present():
        return
    if os.environ.get("XERO_OPENAPI_REQUIRED"):
        pytest.fail(f"XERO_OPENAPI_REQUIRED is set but {SUBSET} is missing")
    pytest.skip(f"Xero's OpenAPI subset is not at {SUBSET}: bodies are not schema-checked")


@functools.lru_cache(maxsize=8)
def _validator(name: str) -> Any:
    from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker

    root = {"$ref": f"#/components/schemas/{name}", "components": _components()}
    return OAS30WriteValidator(root, format_checker=oas30_format_checker)


def schema_errors(name: str, element: Any) -> list[str]:
    """Every way ``element`` breaks the ``name`` schema (empty: valid). Needs the subset."""
    errors = sorted(_validator(name).iter_errors(element), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors]


def validate_element(name: str, element: Any) -> list[str]:
    """Like :func:`schema_errors`, but an absent subset checks nothing (the fake still runs),
    unless ``XERO_OPENAPI_REQUIRED`` says the check must run."""
    if not schema_present():
        if os.environ.get("XERO_OPENAPI_REQUIRED"):
            raise AssertionError(f"XERO_OPENAPI_REQUIRED is set but {SUBSET} is missing")
        return []
    return schema_errors(name, element)

"""Regenerate ``xero_accounting_subset.json`` from Xero's published OpenAPI description.

    python extract.py path/to/Xero-OpenAPI/xero_accounting.yaml <commit>

Keeps ``components.schemas`` reachable from ``Invoices`` and ``Contacts`` (the bodies this
connector sends and reads), unchanged, plus where they came from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOTS = ("Invoices", "Contacts", "Currencies", "Organisations")


def reachable(schemas: dict[str, Any], roots: tuple[str, ...]) -> dict[str, Any]:
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    name = value.rsplit("/", 1)[-1]
                    if name not in seen:
                        seen.add(name)
                        walk(schemas[name])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for root in roots:
        seen.add(root)
        walk(schemas[root])
    return {name: schemas[name] for name in sorted(seen)}


def main(source: str, commit: str) -> None:
    doc = yaml.safe_load(Path(source).read_text())
    subset = {
        "openapi": doc["openapi"],
        "info": {
            "title": doc["info"]["title"],
            "version": str(doc["info"]["version"]),
            "x-source": "https://github.com/XeroAPI/Xero-OpenAPI/blob/"
            f"{commit}/xero_accounting.yaml",
            "x-subset": "components.schemas reachable from " + ", ".join(ROOTS),
        },
        "paths": {},
        "components": {"schemas": reachable(doc["components"]["schemas"], ROOTS)},
    }
    out = Path(__file__).with_name("xero_accounting_subset.json")
    out.write_text(json.dumps(subset, indent=1, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""The OpenAPI document is valid OpenAPI 3.1 and describes every JSON route the app serves."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate


def _openapi_path(rule: str) -> str:
    # Flask "<int:rate_id>" / "<path:timesheet_id>" -> OpenAPI "{rate_id}"
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.removeprefix("/api/v1"))


def test_document_is_valid_openapi_31(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_api_route_and_method_is_documented(app: Any, client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = _openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == [], f"routes missing from the OpenAPI document: {missing}"


def test_documented_paths_exist(app: Any, client: Any) -> None:
    served = {
        _openapi_path(rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
    }
    documented = set(client.get("/api/v1/openapi.json").json["paths"])
    assert documented <= served, documented - served

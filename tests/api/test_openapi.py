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
    paths = client.get("/api/v1/openapi.json").json["paths"]
    documented = {path for path, item in paths.items() if "servers" not in item}
    assert documented <= served, documented - served
    # Path items with their own servers (the provider receivers) are served at the root.
    root = {re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", r.rule) for r in app.url_map.iter_rules()}
    at_root = {
        p for p, item in paths.items() if [s["url"] for s in item.get("servers", [])] == ["/"]
    }
    assert at_root and at_root <= root, at_root - root


def test_status_sync_fields_and_receivers_are_documented(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").json
    draft = doc["components"]["schemas"]["Draft"]["properties"]
    assert set(draft["provider_status"]["enum"]) == {
        "draft",
        "sent",
        "partially_paid",
        "paid",
        "uncollectible",
        "voided",
        "deleted",
        None,
    }
    assert draft["provider_status_at"]["format"] == "date-time"
    assert "post" in doc["paths"]["/drafts/provider-status/sync"]
    for receiver in ("/webhooks/stripe", "/webhooks/quickbooks"):
        assert "post" in doc["paths"][receiver], receiver

"""Every admin page and API route refuses anonymous callers (except the declared public ones)."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter

from connector.auth import PUBLIC_ENDPOINTS
from tests.app_fixtures import csrf_token

# Blueprint static folders serve the stylesheet the sign-in page needs; they hold no data.
STATIC_SUFFIX = ".static"


def _url(app: Any, rule: Any, workspace_id: int) -> str:
    """A concrete URL for the rule: ints are the (existing) workspace's id, strings "x"."""
    values: dict[str, Any] = {}
    for arg in rule.arguments:
        converter = rule._converters[arg]
        values[arg] = workspace_id if isinstance(converter, IntegerConverter) else "x"
    if "kind" in values:
        values["kind"] = "project"
    adapter = app.url_map.bind("localhost")
    return adapter.build(
        rule.endpoint, values, method=next(iter(rule.methods - {"HEAD", "OPTIONS"}))
    )


def protected_rules(app: Any) -> list[Any]:
    rules = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.endswith(STATIC_SUFFIX):
            continue
        rules.append(rule)
    return rules


def test_every_route_refuses_anonymous_access(app: Any, workspace: Any) -> None:
    client = app.test_client()
    token = csrf_token(client)  # so a refusal is about authentication, not a missing token
    rules = protected_rules(app)
    assert len(rules) > 30, "the URL map looks too small: did a blueprint fail to register?"
    open_routes = []
    for rule in rules:
        url = _url(app, rule, workspace.id)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(
                url,
                method=method,
                data={"csrf_token": token} if not url.startswith("/api/") else None,
                headers={"X-CSRFToken": token},
            )
            if url.startswith("/api/"):
                ok = response.status_code == 401 and response.mimetype == "application/problem+json"
            else:
                location = response.headers.get("Location", "")
                ok = response.status_code == 302 and "/login" in location
            if not ok:
                open_routes.append((method, url, rule.endpoint, response.status_code))
    assert open_routes == [], f"routes open to anonymous callers: {open_routes}"


def test_public_endpoints_are_few_and_known() -> None:
    assert {"admin.login", "webhooks.receive", "health.healthz"} <= PUBLIC_ENDPOINTS
    assert not any(
        e.startswith(("mappings.", "api.list", "admin.workspace")) for e in PUBLIC_ENDPOINTS
    )

"""Issue #20 item 9: the OpenAPI document and the server's validation agree, for every operation
the document lists (new endpoints are covered the day they are documented).

* Requests the document allows (parameters and bodies generated from its schemas with
  hypothesis-jsonschema, a bounded number per operation) are never refused for their shape (no
  400/422 except the refusals listed in SEMANTIC, which no schema can express), never a 5xx,
  always a documented status, and a 2xx body matches the documented response schema.
* Values the document forbids (each query parameter and each top-level body field in turn, from
  a fixed list of hostile values) are refused with a 4xx naming that field.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.app_fixtures import WorkspaceHandle
from tests.helpers import EVENTS

METHODS = ("get", "put", "post", "patch", "delete")
EXAMPLES = 8  # per operation: bounded, so the whole file runs in seconds
# Refusals of document-valid requests that no schema can express (rules across fields, limits
# per currency, the event's own workspace): operationId -> the fields or problem types allowed.
# Which ids go together, KWD's lower limit, one rate per scope and start date (stored state).
SCOPE_RULES = {"/customer_id", "/project_id", "/amount", "/effective_from"}
SEMANTIC = {
    "createRate": SCOPE_RULES,
    "updateRate": SCOPE_RULES,
    "previewEvent": {"unbillable", "/data/workspace_id"},
    # A billing setting sent flat and inside "settings" with two different values.
    "patchSettings": {"setting-sent-twice"},
}
EVENT_EXAMPLES = sorted(EVENTS.glob("*.json"))
HOSTILE = ["", " ", "x", "-1", "\u00b2", "\u0663", "99999999999999999999", "1.5", "null"]
HOSTILE_JSON: list[Any] = [*HOSTILE, None, -1, 1.5, 10**20, True, [], {}, "a" * 300]


def _document(client: Any) -> dict[str, Any]:
    return client.get("/api/v1/openapi.json").json


def _inline(schema: Any, components: dict[str, Any], seen: frozenset[str] = frozenset()) -> Any:
    """The schema with every ``#/components/schemas/...`` reference replaced by its target."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name in seen:
                return {}
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            target = _inline(components[name], components, seen | {name})
            return {"allOf": [target, _inline(rest, components, seen)]} if rest else target
        return {k: _inline(v, components, seen) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, components, seen) for v in schema]
    return schema


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    components = doc["components"]["schemas"]
    out = []
    for path, item in doc["paths"].items():
        if "servers" in item:  # the provider receivers: signed, tested with their own suites
            continue
        for method in METHODS:
            if method in item:
                out.append((path, method, _inline(item[method], components), doc["components"]))
    return out


@pytest.fixture
def operations(client: Any) -> dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]]:
    return {f"{m.upper()} {p}": (p, m, op, c) for p, m, op, c in _operations(_document(client))}


def _body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    content = op.get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def _response_schema(op: dict[str, Any], status: int, components: dict[str, Any]) -> Any:
    response = op["responses"].get(str(status))
    if response is None:
        return None
    if "$ref" in response:
        response = components["responses"][response["$ref"].rsplit("/", 1)[1]]
    for media in (response.get("content") or {}).values():
        if "schema" in media:
            return media["schema"]
    return None


def _as_text(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _send(
    client: Any,
    ws: WorkspaceHandle,
    method: str,
    path: str,
    path_values: dict[str, Any],
    query: dict[str, Any],
    body: Any = None,
    *,
    has_body: bool,
) -> Any:
    url = "/api/v1" + path
    for name, value in path_values.items():
        url = url.replace("{" + name + "}", quote(_as_text(value), safe=""))
    kwargs: dict[str, Any] = {"headers": ws.auth, "query_string": query}
    if has_body:
        kwargs["data"] = json.dumps(body)
        kwargs["content_type"] = "application/json"
    return client.open(url, method=method.upper(), **kwargs)


def _check_documented(op: dict[str, Any], response: Any, components: dict[str, Any]) -> None:
    status = response.status_code
    assert status < 500, response.get_data(as_text=True)
    assert str(status) in op["responses"], (status, response.get_data(as_text=True)[:300])
    schema = _response_schema(op, status, components)
    if schema is not None and response.is_json:
        full = {**copy.deepcopy(schema), "components": components}
        jsonschema.validate(response.json, full, cls=jsonschema.Draft202012Validator)


def _values(schema: dict[str, Any]) -> Any:
    """Values valid under ``schema``. Objects are built here, property by property
    (hypothesis-jsonschema's own object strategy does not run on current hypothesis)."""
    if schema.get("type") == "object" and "properties" in schema:
        properties = schema["properties"]
        required = set(schema.get("required", []))
        strategy = st.fixed_dictionaries(
            {name: _values(properties[name]) for name in properties if name in required},
            optional={
                name: _values(properties[name]) for name in properties if name not in required
            },
        )
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.FormatChecker()
        )
        return strategy.filter(validator.is_valid)
    return from_schema(schema)


def _bodies(op: dict[str, Any]) -> Any:
    schema = _body_schema(op)
    if schema is None:
        return st.none()
    if op.get("operationId") == "previewEvent":  # the contract's own documented examples
        valid = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        examples = [json.loads(f.read_text()) for f in EVENT_EXAMPLES]
        return st.sampled_from([e for e in examples if valid.is_valid(e)])
    return _values(schema)


def _parameter_strategy(op: dict[str, Any], where: str) -> Any:
    strategies = {}
    for param in op.get("parameters", []):
        if param["in"] == where:
            values = from_schema(param.get("schema", {}))
            if where == "path":  # a slash (even %2F) ends a path segment; empty is no segment
                values = values.filter(lambda v: _as_text(v) != "" and "/" not in _as_text(v))
            strategies[param["name"]] = (
                values if param.get("required") else st.one_of(st.none(), values)
            )
    return st.fixed_dictionaries(strategies).map(
        lambda d: {
            k: (v if isinstance(v, str) else json.dumps(v)) for k, v in d.items() if v is not None
        }
    )


def pytest_generate_tests(metafunc: Any) -> None:
    if "operation_key" in metafunc.fixturenames:
        from connector.api.openapi import build_document

        keys = [f"{m.upper()} {p}" for p, m, _op, _c in _operations(build_document())]
        metafunc.parametrize("operation_key", keys)


def test_every_documented_request_is_accepted_or_refused_as_documented(
    client: Any, workspace: WorkspaceHandle, operations: Any, operation_key: str
) -> None:
    path, method, op, components = operations[operation_key]
    body_schema = _body_schema(op)
    semantic = SEMANTIC.get(op.get("operationId", ""), set())

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(
        path_values=_parameter_strategy(op, "path"),
        query=_parameter_strategy(op, "query"),
        body=_bodies(op),
    )
    def check(path_values: dict[str, Any], query: dict[str, Any], body: Any) -> None:
        response = _send(
            client, workspace, method, path, path_values, query, body,
            has_body=body_schema is not None,
        )  # fmt: skip
        _check_documented(op, response, components)
        if response.status_code in (400, 422):
            problem = response.json
            named = {problem.get("field"), *(e["field"] for e in problem.get("errors", []))}
            problem_type = str(problem.get("type", "")).rsplit("/", 1)[-1]
            allowed = problem_type in semantic or (named - {None} <= semantic and named != {None})
            assert allowed, (query, body, problem)

    check()


def test_values_the_document_forbids_are_refused_naming_the_field(
    client: Any, workspace: WorkspaceHandle, operations: Any, operation_key: str
) -> None:
    path, method, op, components = operations[operation_key]
    body_schema = _body_schema(op)
    path_values = {
        p["name"]: ("client" if p["name"] == "kind" else "1")
        for p in op.get("parameters", [])
        if p["in"] == "path"
    }
    checker = jsonschema.FormatChecker()
    refused = 0
    for param in op.get("parameters", []):
        if param["in"] != "query":
            continue
        validator = jsonschema.Draft202012Validator(param["schema"], format_checker=checker)
        for raw in HOSTILE:
            value: Any = raw
            if param["schema"].get("type") == "integer":
                try:
                    value = int(raw) if raw.strip().lstrip("-").isascii() else raw
                except ValueError:
                    value = raw
            if validator.is_valid(value):
                continue
            response = _send(
                client, workspace, method, path, path_values, {param["name"]: raw}, None,
                has_body=body_schema is not None and False,
            )  # fmt: skip
            assert response.status_code in (400, 404, 422), (param["name"], raw)
            _check_documented(op, response, components)
            if response.status_code == 422:
                named = [e["field"] for e in response.json.get("errors", [])]
                assert f"/{param['name']}" in [response.json.get("field"), *named], raw
            refused += 1
    if body_schema and body_schema.get("type") == "object" and body_schema.get("properties"):
        baseline = find(_bodies(op), lambda _body: True, settings=settings(database=None))
        for name, prop in body_schema["properties"].items():
            validator = jsonschema.Draft202012Validator(prop, format_checker=checker)
            for value in HOSTILE_JSON:
                if validator.is_valid(value):
                    continue
                response = _send(
                    client, workspace, method, path, path_values, {}, {**baseline, name: value},
                    has_body=True,
                )  # fmt: skip
                assert response.status_code in (400, 404, 422), (name, value, response.status_code)
                _check_documented(op, response, components)
                if response.status_code == 422:
                    named = [e["field"] for e in response.json.get("errors", [])]
                    fields = [response.json.get("field"), *named]
                    assert any(str(f).startswith(f"/{name}") for f in fields), (name, value, fields)
                refused += 1

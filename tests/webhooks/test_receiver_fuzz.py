"""Whatever an authentic sender puts in the body, the answer is a 2xx or a 4xx: never a 500."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import event

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    ("type",),
    ("timestamp",),
    ("data",),
    ("data", "workspace_id"),
    ("data", "timesheet"),
    ("data", "timesheet", "id"),
    ("data", "timesheet", "member"),
    ("data", "timesheet", "date_from"),
    ("data", "timesheet", "daily_breakdown"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "total_minutes"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "rate"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "rate", "amount"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "client"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "project_id"),
]
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _set(doc: dict, path: tuple, value: object) -> dict:
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


@FUZZ
@given(body=st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200)))
def test_arbitrary_bodies_never_500(workspace, post_event, body) -> None:
    res = post_event(workspace, body)
    assert res.status_code in (200, 202, 400, 422), res.get_data(as_text=True)


@FUZZ
@given(path=st.sampled_from(PATHS), value=JSON)
def test_any_field_replaced_by_anything_never_500(workspace, post_event, path, value) -> None:
    doc = _set(copy.deepcopy(event("timesheet_approved__three_customers")), path, value)
    res = post_event(workspace, doc)
    assert res.status_code in (200, 202, 400, 422), res.get_data(as_text=True)
    if res.status_code >= 400:
        assert res.mimetype == "application/problem+json" and "detail" in res.json


def test_nan_and_infinity_are_not_json(workspace, post_event) -> None:
    body = json.dumps(event("timesheet_approved__three_customers")).replace('"27.50"', "NaN")
    res = post_event(workspace, body.encode())
    assert res.status_code == 400

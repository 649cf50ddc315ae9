"""Whatever an authentic sender puts in the body, the answer is a 2xx or a 4xx: never a 500,
and whatever is answered 202 ends billed, held with a reason, or waiting for data: never failed.
"""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connector import db
from connector.models import CustomerMapping
from tests.helpers import event, map_clients_locally
from tests.webhooks.test_receiver_limits import assert_accepted_ends_well

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
# Raw JSON text json.dumps cannot write from Python values: numbers beyond a double, exact
# fractions, escapes for NUL and unpaired surrogates, text longer than the columns.
RAW_LEAVES = st.one_of(
    st.sampled_from(
        [
            "1e400",
            "-1e400",
            "1e-400",
            "27.5",
            "0.1",
            "-0.0",
            "1E+2",
            "99999.9999999",
            "100000.01",
            str(10**30),
            str(2**63),
            str(-(2**63) - 1),
            '"\\ud800"',
            '"\\udfff x"',
            '"a\\u0000b"',
            '"\\ud83d\\ude00"',  # a valid pair: storable
            '"' + "x" * 256 + '"',
            '"' + "y" * 501 + '"',
            '"0001-01-01T00:00:00+05:00"',
            '"9999-12-31T23:59:59-05:00"',
        ]
    ),
    JSON.map(json.dumps),
)
MARKER = "@@FUZZ@@"
BILLED_PATHS = [
    *PATHS,
    ("type",),
    ("data", "timesheet", "member", "id"),
    ("data", "timesheet", "member", "name"),
    ("data", "timesheet", "member", "email"),
    ("data", "timesheet", "approved_at"),
    ("data", "timesheet", "status"),
    ("data", "timesheet", "total_minutes"),
    ("data", "timesheet", "total_hours"),  # an extra field is stored with the timesheet
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "project_name"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "contract_id"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "client", "name"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "client", "email"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "task", "name"),
    ("data", "timesheet", "daily_breakdown", "2026-11-16", 0, "extra"),
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


@FUZZ
@given(path=st.sampled_from(BILLED_PATHS), raw=RAW_LEAVES, approved=st.booleans())
def test_whatever_is_accepted_ends_billed_held_or_waiting(
    workspace, post_event, path, raw, approved
) -> None:
    if not db.session.scalar(select(func.count()).select_from(CustomerMapping)):
        map_clients_locally(workspace.id)
    doc = event("timesheet_approved__three_customers")
    if not approved:
        doc["type"] = "timesheet.unapproved"
    body = json.dumps(_set(doc, path, MARKER)).replace(json.dumps(MARKER), raw, 1)
    res = post_event(workspace, body.encode())
    assert res.status_code in (200, 202, 400, 422), res.get_data(as_text=True)
    if res.status_code >= 400:
        assert res.mimetype == "application/problem+json" and "detail" in res.json
    assert_accepted_ends_well()

"""The strict parsing layer itself (``connector.validation``, issue #20 items 1 and 3)."""

from __future__ import annotations

import pytest

from connector.validation import (
    FieldError,
    ascii_decimal,
    ascii_whole,
    json_depth_exceeds,
    parse_json,
)
from tests.api.test_strict_numbers import BAD_NUMBERS, OTHER_SCRIPT_RATES


# --- the layer itself ------------------------------------------------------------------------
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_ascii_whole_refuses_what_int_would_take_or_choke_on(value: str) -> None:
    with pytest.raises(FieldError) as caught:
        ascii_whole(value, "n")
    assert caught.value.field == "n"


def test_ascii_whole_bounds_and_types() -> None:
    assert ascii_whole("2147483647", "n") == 2**31 - 1
    assert ascii_whole("-5", "n", lo=-10) == -5
    assert ascii_whole(7, "n") == 7
    for value in (True, 1.0, None, [1], "1" * 5000):
        with pytest.raises(FieldError):
            ascii_whole(value, "n")


@pytest.mark.parametrize("value", [*OTHER_SCRIPT_RATES, "27,50", "1e3", "NaN", "-1", ".5", "5."])
def test_ascii_decimal_refuses_other_digits_and_notations(value: str) -> None:
    with pytest.raises(FieldError):
        ascii_decimal(value, "amount")


def test_ascii_decimal_reads_plain_amounts() -> None:
    assert str(ascii_decimal("27.50", "amount")) == "27.50"
    with pytest.raises(FieldError):
        ascii_decimal("1" * 13, "amount")


def test_json_depth_is_limited_without_recursion() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert json_depth_exceeds(deep)
    assert not json_depth_exceeds(b'{"a": "' + b"[" * 1000 + b'"}')  # inside a string
    assert not json_depth_exceeds(b"[" + b"[]," * 10_000 + b"[]]")  # wide, not deep
    with pytest.raises(ValueError, match="deeper"):
        parse_json(deep)
    assert parse_json(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}

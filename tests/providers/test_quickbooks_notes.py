"""The QuickBooks PrivateNote of a shared invoice: the words name each approval once, then one
``tsi-key:`` marker per approval; within 4,000 characters, with a plain refusal beyond them."""

from __future__ import annotations

import pytest

from connector.providers.base import Rejected
from connector.providers.quickbooks import MAX_PRIVATE_NOTE, marked_note, note_keys


def test_each_key_is_recorded_once_and_the_words_never_repeat_one() -> None:
    note = marked_note("Draft generated from ts-1 (Ada), ts-2 (Bob).", ["k-1", "k-2", "k-1"])
    assert note.splitlines() == [
        "Draft generated from ts-1 (Ada), ts-2 (Bob).",
        "tsi-key: k-1",
        "tsi-key: k-2",
    ]
    assert note_keys(note) == ["k-1", "k-2"]


def test_the_words_give_way_to_the_markers_and_too_many_approvals_are_refused_plainly() -> None:
    keys = [f"ti-{i:046d}" for i in range(60)]  # 60 markers of 55 characters: 3,359
    note = marked_note("w" * 5000, keys)
    assert len(note) <= MAX_PRIVATE_NOTE and note_keys(note) == keys
    assert note.startswith("w") and "\u2026" in note  # the words are clipped, never a marker
    with pytest.raises(Rejected, match=r"at most 4000 characters.*80 approvals do not fit"):
        marked_note("words", [f"ti-{i:046d}" for i in range(80)])

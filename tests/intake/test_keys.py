"""A caller's idempotency and ordering keys: checked, named when wrong, stored as keyed hashes."""

from __future__ import annotations

import pytest

from dispatcher.errors import IdempotencyConflict, InvalidDispatchArgument
from dispatcher.intake.keys import check_key, checked_keys, idempotency_for, repeats_within
from dispatcher.store.sealing import PLAIN

ORDER = {"order_number": "ORDER-1", "status": "updated", "created_at": "2026-01-30T12:00:00Z"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must be 1 to 255 characters, got 0"),
        ("x" * 256, "must be 1 to 255 characters, got 256"),
        (7, "expected a string, got int"),
        ("\ud800", "must be text UTF-8 can encode"),
    ],
)
def test_a_bad_key_is_named(value, problem) -> None:
    with pytest.raises(InvalidDispatchArgument, match=f"^ordering_key: {problem}"):
        check_key("ordering_key", value)
    assert check_key("ordering_key", "x" * 255) == "x" * 255


def test_a_list_of_keys_is_one_per_item_each_named_by_index() -> None:
    assert checked_keys("idempotency_keys", None, 2) == [None, None]
    assert checked_keys("idempotency_keys", ["a", None], 2) == ["a", None]
    with pytest.raises(InvalidDispatchArgument, match=r"^idempotency_keys: expected a list of 2 keys"):
        checked_keys("idempotency_keys", "ab", 2)
    with pytest.raises(InvalidDispatchArgument, match=r"^idempotency_keys\[1\]: "):
        checked_keys("idempotency_keys", ["a", ""], 2)


def test_repeats_within_one_call_point_to_the_first_or_conflict() -> None:
    first = idempotency_for(PLAIN, "order_changed", ORDER, "k-1")
    again = idempotency_for(PLAIN, "order_changed", ORDER, "k-1")
    assert repeats_within([first, None, again]) == {2: 0}
    other = idempotency_for(PLAIN, "order_changed", {**ORDER, "status": "cancelled"}, "k-1")
    with pytest.raises(IdempotencyConflict):
        repeats_within([first, other])

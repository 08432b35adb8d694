"""Portable JSON: the walk that names every value a partner could not read, and its use by
validation (every field of the data, typed or passed through)."""

from __future__ import annotations

import copy
import json
import math
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

import pytest

from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.json_safety import (
    MAX_DEPTH,
    MAX_PROBLEMS,
    MAX_SAFE_INTEGER,
    describe,
    json_problems,
    member,
)
from dispatcher.contract.validation import validate
from dispatcher.errors import InvalidEventData


def nested(levels: int, leaf: object = None) -> object:
    """``levels`` arrays, one inside the other (``nested(1) == [leaf]``, or ``[]`` without a leaf)."""
    value: object = [] if leaf is None else [leaf]
    for _ in range(levels - 1):
        value = [value]
    return value


def message(**changes: object) -> dict:
    data = copy.deepcopy(CATALOGUE["message_created"].example())
    data.update(changes)
    return data


def problems_of(event: str, data: object) -> list[str]:
    with pytest.raises(InvalidEventData) as caught:
        validate(event, data)
    str(caught.value).encode("utf-8")  # every message is printable, whatever it describes
    return caught.value.problems


# --- what is JSON ----------------------------------------------------------------------------


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -0.0,
        1.5e308,
        "",
        "héllo \u2028 😀",
        [],
        {},
        {"a": [1, {"b": None}], "c": "d"},
        MAX_SAFE_INTEGER,
        -MAX_SAFE_INTEGER,
        Colour.RED,
        Level.HIGH,
        nested(MAX_DEPTH),
    ],
)
def test_plain_json_has_no_problems(value: object) -> None:
    assert json_problems(value, "attachment") == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (datetime(2026, 1, 30, tzinfo=UTC), "ISO 8601"),
        (date(2026, 1, 30), "ISO 8601"),
        (Decimal("1.5"), "a string or a float"),
        (b"bytes", "base64"),
        (bytearray(b"x"), "base64"),
        ({1, 2}, "as a list"),
        (frozenset(), "as a list"),
        ((1, 2), "as a list"),
        (object(), "expected a JSON value"),
        (complex(1, 2), "expected a JSON value"),
    ],
)
def test_other_types_are_named_with_a_hint(value: object, words: str) -> None:
    (problem,) = json_problems({"x": value}, "attachment[0]")
    assert problem.startswith("attachment[0].x: expected a JSON value")
    assert words in problem


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_not_json_numbers(value: float) -> None:
    (problem,) = json_problems([value], "attachment")
    assert problem.startswith("attachment[0]: float ") and "not a JSON number" in problem


@pytest.mark.parametrize(
    "value",
    [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**30, 10**5000],
    ids=["2**53", "-2**53", "30-digits", "5000-digits"],
)
def test_integers_outside_the_i_json_range_are_named(value: int) -> None:
    (problem,) = json_problems({"size": value}, "attachment[0]")
    assert problem.startswith("attachment[0].size: integer ")
    assert "I-JSON" in problem and "RFC 7493" in problem
    assert len(problem) < 300


def test_integer_range_can_be_left_to_the_reader() -> None:
    assert json_problems([2**60], "payload", exact_integers=False) == []


def test_a_lone_surrogate_is_named_with_its_index() -> None:
    (problem,) = json_problems({"title": "ab\ud800c"}, "attachment[0]")
    assert problem == (
        "attachment[0].title: contains a lone surrogate U+D800 at index 2, which UTF-8 cannot encode"
    )


def test_keys_are_checked_too() -> None:
    problems = json_problems({"na\udc80me": 1, 7: "seven", "ok": 1}, "attachment[0]")
    assert problems == [
        "attachment[0]['na\\udc80me']: object key contains a lone surrogate U+DC80 at index 2, "
        "which UTF-8 cannot encode",
        "attachment[0]: object key int 7 is not a string",
    ]


def test_paths_name_keys_plainly_or_quoted_and_cut() -> None:
    assert member("attachment[0]", "meta") == "attachment[0].meta"
    assert member("", "meta") == "meta"
    assert member("a", "two words") == "a['two words']"
    assert member("a", 3) == "a[3]"
    assert len(member("a", "k" * 1_000_000)) < 60


# --- nesting ---------------------------------------------------------------------------------


def test_nesting_is_counted_from_the_field() -> None:
    assert json_problems(nested(MAX_DEPTH), "attachment") == []
    (problem,) = json_problems(nested(MAX_DEPTH + 1), "attachment")
    assert problem == f"attachment{'[0]' * MAX_DEPTH}: arrays and objects nested more than 32 levels deep"


def test_objects_count_as_levels_like_arrays() -> None:
    value: dict = {}
    for _ in range(MAX_DEPTH - 1):
        value = {"a": value}
    assert json_problems(value, "attachment") == []
    (problem,) = json_problems({"a": value}, "attachment")
    assert problem.startswith("attachment" + ".a" * MAX_DEPTH + ": ")


@pytest.mark.parametrize("levels", [10_000, 1_000_000])
def test_any_depth_is_refused_fast_without_recursion(levels: int) -> None:
    value = nested(levels)
    started = time.perf_counter()
    problems = json_problems(value, "attachment")
    assert time.perf_counter() - started < 0.5
    assert len(problems) == 1 and len(problems[0]) < 200


def test_a_reference_cycle_is_named() -> None:
    loop: list = [1]
    loop.append({"back": loop})
    assert json_problems(loop, "attachment") == ["attachment[1].back: contains itself (a reference cycle)"]


def test_shared_values_are_fine_and_checked_fast() -> None:
    shared: list = []
    for _ in range(MAX_DEPTH - 1):
        shared = [shared, shared]  # 2**31 paths, 31 lists
    started = time.perf_counter()
    assert json_problems(shared, "attachment") == []
    assert time.perf_counter() - started < 0.5


def test_a_shared_value_is_rechecked_where_it_sits_deeper() -> None:
    deep = nested(MAX_DEPTH - 2)  # fits at level 2, not at level 5
    value = [deep, nested(3, deep)]
    (problem,) = json_problems(value, "attachment")
    assert problem.startswith("attachment[1][0][0][0]") and "nested more than 32" in problem


# --- bounded messages ------------------------------------------------------------------------


def test_problems_are_listed_up_to_a_limit() -> None:
    problems = json_problems([math.nan] * 1000, "attachment")
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == f"attachment: more problems not listed (the first {MAX_PROBLEMS} are)"
    assert json_problems([math.nan] * MAX_PROBLEMS, "attachment")[-1].startswith("attachment[9]:")


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no")


HUGE = {
    "str": lambda: "x" * 10_000_000,
    "bytes": lambda: b"x" * 10_000_000,
    "int": lambda: 10**5000,
    "list": lambda: list(range(1_000_000)),
    "dict": lambda: {str(i): i for i in range(100_000)},
    "set": lambda: set(range(100_000)),
    "bad-repr": Unprintable,
    "bad-repr-inside": lambda: [Unprintable()],
    "big-int-inside": lambda: {"k": 10**5000},
}


@pytest.mark.parametrize("kind", list(HUGE))
def test_describe_is_short_and_fast_for_anything(kind: str) -> None:
    value = HUGE[kind]()
    started = time.perf_counter()
    text = describe(value)
    assert time.perf_counter() - started < 0.2
    assert len(text) < 70
    assert text.startswith(type(value).__name__ + " ")


def test_describe_deep_nesting_without_recursion() -> None:
    assert describe(nested(100_000)) == "list [[[[...]]]]"


def test_describe_keeps_short_values_as_repr() -> None:
    assert describe("1") == "str '1'"
    assert describe([1, 2]) == "list [1, 2]"
    assert describe({"value": "updated"}) == "dict {'value': 'updated'}"
    assert describe("\ud800") == "str '\\ud800'"
    assert describe(True) == "bool True"


# --- through validate(): every field of the data ---------------------------------------------


def test_attachment_items_must_be_portable_json() -> None:
    data = message(attachment=[{"url": "https://x", "meta": {"size": 2**53, "when": datetime.now(UTC)}}])
    problems = problems_of("message_created", data)
    assert [p.split(":")[0] for p in problems] == ["attachment[0].meta.size", "attachment[0].meta.when"]


@pytest.mark.parametrize(
    ("event", "change", "path"),
    [
        ("message_created", lambda d: d.update(message="hi \ud800"), "message"),
        ("message_created", lambda d: d.update(reply_message_id="\udfff"), "reply_message_id"),
        (
            "prescription_submitted",
            lambda d: d["medication"][0].update(directions="\ud83d"),
            "medication[0].directions",
        ),
        (
            "prescription_submitted",
            lambda d: d["medication"][0].update(quantity=2**53),
            "medication[0].quantity",
        ),
        ("order_changed", lambda d: d.update(status="x" * 5_000_000 + "\ud800"), "status"),
    ],
)
def test_typed_fields_are_checked_too(event: str, change, path: str) -> None:
    data = copy.deepcopy(CATALOGUE[event].example())
    change(data)
    (problem,) = problems_of(event, data)
    assert problem.startswith(f"{path}: ") and len(problem) < 300


def test_an_unknown_field_with_an_unprintable_name_is_named_printably() -> None:
    data = message(**{"bad\ud800": 1, "y" * 1_000_000: 2})
    problems = problems_of("message_created", data)
    assert problems[0] == "['bad\\ud800']: unknown field"
    assert problems[1].endswith(": unknown field") and len(problems[1]) < 80


@pytest.mark.parametrize("kind", ["deep-list", "huge-int", "long-str"])
def test_a_wrong_type_is_described_briefly_whatever_it_is(kind: str) -> None:
    value = {
        "deep-list": lambda: nested(100_000),
        "huge-int": lambda: 10**5000,
        "long-str": lambda: "z" * 10**7,
    }
    (problem,) = problems_of("message_created", message(is_doctor=value[kind]()))
    assert problem.startswith("is_doctor: expected true or false, got ") and len(problem) < 120


def test_what_validation_accepts_serializes_strictly() -> None:
    data = message(attachment=[{"a": [MAX_SAFE_INTEGER, -0.0, "é", nested(MAX_DEPTH - 3)]}])
    clean = validate("message_created", data)
    text = json.dumps(clean, ensure_ascii=False, allow_nan=False)
    assert json.loads(text.encode("utf-8")) == clean

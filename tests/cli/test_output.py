"""``to_json``: the text of ``json.dumps(indent=2, ensure_ascii=False)``, times as UTC text,
written without recursion."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dispatcher.cli.output import to_json
from dispatcher.vocabulary import DeliveryStatus

DOCUMENTS = {
    "scalars": [None, True, False, 0, -7, 1.5, -0.0, 1e300, 10**30, "", 'é \u2028 😀 "q" \\ \n\t\x01'],
    "empties": {"a": [], "b": {}, "c": [[]], "d": [{}]},
    "nested": {"a": [1, [2, {"b": None, "c": [3]}], {"d": {"e": "f"}}], "g": "h"},
    "keys": {7: "int", 2.5: "float", True: "bool", False: "no", None: "null", "s": "str"},
    "tuples": ({"x": (1, 2)}, ()),
    "enums": {"status": DeliveryStatus.FAILED, DeliveryStatus.QUEUED: 1},
    "non-finite": [math.nan, math.inf, -math.inf],
    "top-level-string": "just text",
}


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_to_json_writes_what_json_dumps_writes(name: str) -> None:
    value = DOCUMENTS[name]
    assert to_json(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_times_are_utc_text_wherever_they_are() -> None:
    moment = datetime(2026, 1, 30, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    text = to_json({"at": moment, "list": [moment, {"deep": moment}]})
    assert json.loads(text) == {
        "at": "2026-01-30T12:00:00Z",
        "list": ["2026-01-30T12:00:00Z", {"deep": "2026-01-30T12:00:00Z"}],
    }


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    value: list = []
    for _ in range(5_000):  # deeper than Python's recursion limit
        value = [value]
    started = time.perf_counter()
    text = to_json({"payload": value})
    assert time.perf_counter() - started < 2
    assert text.count("[") == 5_001 and text.count("]") == 5_001  # the innermost is []
    assert text.startswith('{\n  "payload": [\n    [\n') and text.endswith("]\n  ]\n}")


def test_a_cycle_is_an_error_not_a_hang() -> None:
    loop: list = [1]
    loop.append({"again": loop})
    with pytest.raises(ValueError, match="Circular reference"):
        to_json(loop)


def test_shared_values_are_written_each_time() -> None:
    shared = {"a": 1}
    assert json.loads(to_json([shared, shared, {"x": shared}])) == [shared, shared, {"x": shared}]


@pytest.mark.parametrize("value", [object(), {"k": {1, 2}}, {(1, 2): "tuple key"}, datetime.now(UTC).date()])
def test_what_json_cannot_write_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        to_json(value)

"""Validation of an event's data: the event's model (:mod:`.events`) checks the fields, then
every value must be portable JSON (:mod:`.json_safety`); every bad field is named by its path.

One error lists every problem, unknown fields first, then the fields in the seed's order, each
as ``<path>: <problem>``: ``medication[0].quantity: expected an integer, got str '1'``,
``patient_id: required field is missing``, ``colour: unknown field``, ``attachment[0].score:
float nan is not JSON``. So an event that passes is one that can be stored and sent, and one
that does not names the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidEventData
from .catalogue import get_event
from .events import TIMESTAMP_EXPECTED, EventData, timestamps
from .json_safety import describe, json_problems, member

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "list_type": "an array",
    "model_type": "an object",
    "dict_type": "an object",
    "model_attributes_type": "an object",
}


def validate(event: str, data: Any) -> dict[str, Any]:
    """Checks ``data`` against the event's model and returns the normalized copy that is sent.

    Raises:
        UnknownEvent: the event is not in the catalogue.
        InvalidEventData: naming every bad field by its path, e.g. ``medication[0].quantity``.
    """
    model = get_event(event)
    if not isinstance(data, dict):
        raise InvalidEventData(model.event, [f"data: expected an object, got {describe(data)}"])
    unknown = [name for name in data if name not in model.model_fields]
    known = {name: value for name, value in data.items() if name in model.model_fields} if unknown else data
    try:
        instance = model.model_validate(known)
        errors: list[Any] = []
    except ValidationError as exc:
        instance, errors = None, exc.errors(include_url=False)
    problems = [f"{member('', str(name))}: unknown field" for name in unknown]
    problems += problems_of(model, data, errors)
    if problems or instance is None:
        raise InvalidEventData(model.event, problems)
    return instance.data()


def validated_model(instance: EventData) -> dict[str, Any]:
    """The data of an event given as a model: its fields were checked when it was made; its
    values must still be portable JSON (a string can hold a lone surrogate).

    Raises:
        InvalidEventData: naming every bad value by its path.
    """
    data = instance.data()
    problems = [p for name, value in data.items() for p in json_problems(value, name, depth=1)]
    if problems:
        raise InvalidEventData(instance.event, problems)
    return data


def problems_of(model: type[EventData], data: Mapping[str, Any], errors: Sequence[Any]) -> list[str]:
    """The problems of ``data``'s fields: the model's ``errors`` field by field in order, and for
    each field the model accepted, what is not portable JSON in it."""
    by_field: dict[str, list[Any]] = {}
    problems: list[str] = []
    for error in errors:
        by_field.setdefault(str(error["loc"][0]), []).append(error)
    for name in model.model_fields:
        if name in by_field:
            problems.extend(_message(error) for error in by_field[name])
        elif name in data and name not in timestamps(model):
            problems.extend(json_problems(data[name], name, depth=1))
    return problems


def _path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else member(path, str(part))
    return path


def _message(error: Mapping[str, Any]) -> str:
    """One pydantic error in the contract's words."""
    path, kind, value = _path(error["loc"]), error["type"], error.get("input")
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "extra_forbidden":
        return f"{path}: unknown field"
    if kind == "value_error" and value is None:
        return f"{path}: must not be null; expected {TIMESTAMP_EXPECTED}"
    if kind == "value_error":
        return f"{path}: expected {TIMESTAMP_EXPECTED}, got {describe(value)}"
    if kind == "string_unicode":
        return f"{path}: holds text that UTF-8 cannot encode (a lone surrogate)"
    expected = _EXPECTED.get(kind)
    if expected is None:
        return f"{path}: {error['msg']}"
    if value is None:
        return f"{path}: must not be null; expected {expected}"
    return f"{path}: expected {expected}, got {describe(value)}"

"""The event catalogue: each event's name and its model (:mod:`.events`), in the seed's order,
and the field tables the README shows, read off the models."""

from __future__ import annotations

from typing import Any

from ..errors import UnknownEvent
from ..vocabulary import EVENT_NAMES
from .events import MODELS, EventData

CATALOGUE: dict[str, type[EventData]] = {model.event: model for model in MODELS}
"""Event name -> its model; ``CATALOGUE[name].example()`` is the seed's example ``data``."""

assert tuple(CATALOGUE) == EVENT_NAMES, "the catalogue lists the vocabulary's events, in its order"


def get_event(name: Any) -> type[EventData]:
    """The model of the event named ``name``.

    Raises:
        UnknownEvent: the name is not one of the contract's six.
    """
    if not isinstance(name, str) or name not in CATALOGUE:
        raise UnknownEvent(name, EVENT_NAMES)
    return CATALOGUE[name]


def field_table(model: type[Any]) -> list[tuple[str, str, bool, str]]:
    """(name, type, nullable, description) of each field of a model, in order, in the seed's
    words (``String``, ``Integer``, ``Boolean``, ``ISO 8601``, ``Array``), read off the model's
    JSON Schema: what partners see is what the tables say."""
    schema = model.model_json_schema()
    rows = []
    for name, prop in schema["properties"].items():
        options = prop.get("anyOf", [prop])
        nullable = any(o.get("type") == "null" for o in options)
        kind = next(o for o in options if o.get("type") != "null")
        word = "ISO 8601" if kind.get("format") == "date-time" else _WORDS.get(kind.get("type"), "Object")
        rows.append((name, word, nullable, prop.get("description", "")))
    return rows


_WORDS = {"string": "String", "integer": "Integer", "boolean": "Boolean", "array": "Array"}


def events_markdown() -> str:
    """The README's tables of the six events' fields, written from the models."""
    from .events import Medication

    lines = []
    for name, model in CATALOGUE.items():
        lines += [f"**`{name}`** ({model.__name__}): {model.summary}.", ""]
        lines += _table(model)
    lines += ["**Medication object** (each item of `medication` in the two prescription events)", ""]
    lines += _table(Medication)
    return "\n".join(lines)


def _table(model: type[Any]) -> list[str]:
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for field, kind, nullable, text in field_table(model):
        shown = f"{kind} or null" if nullable else kind
        rows.append(f"| `{field}` | {shown} | {text} |")
    return [*rows, ""]

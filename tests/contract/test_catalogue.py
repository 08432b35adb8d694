"""The event catalogue (``dispatcher/contract/catalogue.py``) against the seed contract: the six
events in the seed's order, their field tables, and finding an event by name. The models
themselves are ``test_events.py``, validating data against them ``test_validation.py``."""

from __future__ import annotations

import pytest

from dispatcher.contract.catalogue import CATALOGUE, field_table, get_event
from dispatcher.contract.events import Medication
from dispatcher.errors import UnknownEvent
from dispatcher.vocabulary import EVENT_NAMES

from .seed_data import SEED_EXAMPLES, SEED_FIELDS, SEED_MEDICATION_FIELDS

# --- the catalogue ---------------------------------------------------------------------------


def test_catalogue_has_exactly_the_six_seed_events_in_seed_order() -> None:
    assert list(EVENT_NAMES) == list(SEED_EXAMPLES)
    assert list(CATALOGUE) == list(SEED_EXAMPLES)


SEED_WORDS = {
    "String": "string",
    "Integer": "integer",
    "Boolean": "boolean",
    "ISO 8601": "datetime",
    "Array": "array",
}


def seed_table(model) -> list[tuple[str, str, bool]]:
    return [(name, SEED_WORDS[kind], nullable) for name, kind, nullable, _text in field_table(model)]


@pytest.mark.parametrize("event", list(SEED_FIELDS))
def test_each_event_has_the_seed_fields_with_their_types(event: str) -> None:
    model = CATALOGUE[event]
    assert model.event == event
    assert seed_table(model) == SEED_FIELDS[event]
    assert all(text for *_rest, text in field_table(model))


@pytest.mark.parametrize("event", ["prescription_submitted", "prescription_dosage_changed"])
def test_medication_items_have_the_seed_medication_object_fields(event: str) -> None:
    schema = CATALOGUE[event].model_json_schema()
    assert schema["properties"]["medication"]["items"] == {"$ref": "#/$defs/Medication"}
    assert seed_table(Medication) == SEED_MEDICATION_FIELDS


def test_attachment_items_are_not_typed_by_the_catalogue() -> None:
    attachment = CATALOGUE["message_created"].model_json_schema()["properties"]["attachment"]
    assert attachment["type"] == "array" and attachment["items"] == {}


def test_get_event_returns_the_catalogue_entry() -> None:
    assert get_event("order_changed") is CATALOGUE["order_changed"]


@pytest.mark.parametrize("name", ["order_shipped", "", "ORDER_CHANGED", None, 3])
def test_get_event_rejects_unknown_names(name: object) -> None:
    with pytest.raises(UnknownEvent) as caught:
        get_event(name)
    assert repr(name) in str(caught.value)
    assert "order_changed" in str(caught.value)  # the message lists the known events

"""What a partner's code generator makes of the published documents: datamodel-code-generator
(pydantic v2 output), run as a partner runs it over ``dispatcher schema EVENT`` and over
``dispatcher schema --openapi``, writes classes named as the contract reads --
``WebhookMetadata``, ``Medication``, ``<Event>Data``, ``<Event>Webhook``, never ``Data1`` -- and
every published example loads into them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pydantic
import pytest
import yaml

from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.events import EventData
from dispatcher.contract.openapi import openapi_document
from dispatcher.contract.schemas import (
    EXAMPLE_METADATA,
    METADATA_NAME,
    data_name,
    event_schema,
    example_payload,
    webhook_name,
)

PRESCRIPTIONS = {"prescription_submitted", "prescription_dosage_changed"}


def generate(source: Path, kind: str, out: Path) -> ModuleType:
    """Runs ``datamodel-codegen`` over ``source`` (``jsonschema`` or ``openapi``) and imports
    the module it writes."""
    command = [
        *(sys.executable, "-m", "datamodel_code_generator"),
        *("--input", str(source), "--input-file-type", kind, "--output", str(out)),
        *("--output-model-type", "pydantic_v2.BaseModel", "--formatters", "builtin", "--disable-timestamp"),
    ]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    spec = importlib.util.spec_from_file_location(out.stem, out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[out.stem] = module  # pydantic resolves the postponed annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[out.stem]
    return module


def classes(module: ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, pydantic.BaseModel)
        and value.__module__ == module.__name__
    }


def expected(model: type[EventData]) -> set[str]:
    return {METADATA_NAME, data_name(model), webhook_name(model)} | (
        {"Medication"} if model.event in PRESCRIPTIONS else set()
    )


def loads_every_example(module: ModuleType, model: type[EventData]) -> None:
    """The event's examples load into the generated classes and come back out unchanged."""
    payload = example_payload(model)
    body = getattr(module, webhook_name(model)).model_validate(payload)
    assert body.model_dump(mode="json", exclude_unset=True) == payload
    assert type(body.data).__name__ == data_name(model)
    assert (
        getattr(module, data_name(model))
        .model_validate(model.example())
        .model_dump(mode="json", exclude_unset=True)
        == model.example()
    )
    assert getattr(module, METADATA_NAME).model_validate(EXAMPLE_METADATA).retry is False


@pytest.mark.parametrize("event", list(CATALOGUE))
def test_an_events_json_schema_generates_named_classes_its_examples_load_into(
    event: str, tmp_path: Path
) -> None:
    model = CATALOGUE[event]
    source = tmp_path / f"{event}.schema.json"
    source.write_text(json.dumps(event_schema(event), indent=2))
    module = generate(source, "jsonschema", tmp_path / f"{event}_models.py")
    assert classes(module) == expected(model)
    loads_every_example(module, model)
    placeholder = example_payload(model)
    placeholder["metadata"]["request_id"] = "uuid"
    with pytest.raises(pydantic.ValidationError, match="request_id"):
        getattr(module, webhook_name(model)).model_validate(placeholder)


def test_the_openapi_document_generates_one_named_class_per_component(tmp_path: Path) -> None:
    """The YAML ``dispatcher schema --openapi`` prints by default, as the partner guide says."""
    source = tmp_path / "baremeds-webhooks.openapi.yaml"
    source.write_text(yaml.safe_dump(openapi_document(), sort_keys=False, allow_unicode=True))
    module = generate(source, "openapi", tmp_path / "baremeds_webhooks.py")
    assert classes(module) == set().union(*(expected(model) for model in CATALOGUE.values()))
    document = openapi_document()
    for event, model in CATALOGUE.items():
        loads_every_example(module, model)
        media = document["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]
        name = media["schema"]["$ref"].rsplit("/", 1)[1]
        for example in media["examples"].values():
            assert (
                getattr(module, name)
                .model_validate(example["value"])
                .model_dump(mode="json", exclude_unset=True)
                == example["value"]
            )

"""The published documents as a partner's tools see them: validators of an event's body with
formats checked (``format: uuid`` and ``format: date-time`` really checked), against the event's
JSON Schema (``dispatcher schema EVENT``) and against the OpenAPI document, and every example
the documents carry (``test_schemas``, ``test_codegen``, ``test_doc_examples``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.openapi import openapi_document
from dispatcher.contract.schemas import event_schema

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER
"""jsonschema's format checker: ``uuid`` built in, ``date-time`` through rfc3339-validator."""
OPENAPI_URI = "urn:baremeds:webhooks-openapi"


def body_validator(event: str) -> jsonschema.Draft202012Validator:
    """The event's published JSON Schema, formats checked."""
    schema = event_schema(event)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


def openapi_validators(event: str, document: dict[str, Any] | None = None) -> list[Any]:
    """The event's request body schema in the OpenAPI document, formats checked, as a plain
    2020-12 validator and as the OpenAPI 3.1 dialect's validator."""
    document = document if document is not None else openapi_document()
    media = document["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]
    registry: Registry[Any] = Registry().with_resource(OPENAPI_URI, Resource(document, DRAFT202012))
    schema = {"$ref": OPENAPI_URI + media["schema"]["$ref"]}
    return [
        jsonschema.Draft202012Validator(schema, registry=registry, format_checker=FORMATS),
        OAS31Validator(schema, registry=registry, format_checker=oas31_format_checker),
    ]


def schema_examples(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """(JSON pointer of the schema, example) for every item of every ``examples`` keyword in a
    JSON Schema document (or under an OpenAPI document's ``components``)."""
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list):
            for example in node["examples"]:
                yield pointer, example
        for key, value in node.items():
            if key not in ("examples", "const", "enum", "default"):
                yield from schema_examples(value, f"{pointer}/{_escaped(key)}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from schema_examples(item, f"{pointer}/{index}")


def _escaped(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def pointer_validator(document: dict[str, Any], base: str, pointer: str) -> jsonschema.Draft202012Validator:
    """A validator of the schema at ``pointer`` inside ``document`` (known as ``base``), its
    references resolved within the document, formats checked."""
    registry: Registry[Any] = Registry().with_resource(base, Resource(document, DRAFT202012))
    return jsonschema.Draft202012Validator(
        {"$ref": f"{base}#{pointer}"}, registry=registry, format_checker=FORMATS
    )


def every_published_example() -> Iterator[tuple[str, jsonschema.Draft202012Validator, Any]]:
    """(where, validator, example) for every example the published documents carry: each event
    schema's ``examples``, the OpenAPI components' ``examples`` and each webhook's request body
    examples."""
    for event in CATALOGUE:
        schema = event_schema(event)
        for pointer, example in schema_examples(schema):
            yield f"{event}.json#{pointer}", pointer_validator(schema, schema["$id"], pointer), example
    document = openapi_document()
    for pointer, example in schema_examples(document["components"], "/components"):
        yield f"openapi#{pointer}", pointer_validator(document, OPENAPI_URI, pointer), example
    for event, webhook in document["webhooks"].items():
        media = webhook["post"]["requestBody"]["content"]["application/json"]
        for name, example in media["examples"].items():
            for validator in openapi_validators(event, document):
                yield f"openapi webhooks.{event} example {name}", validator, example["value"]

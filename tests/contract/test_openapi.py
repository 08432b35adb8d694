"""The partner contract as an OpenAPI 3.1 document (``dispatcher/contract/openapi.py``): the six
events as ``webhooks`` in the seed's order, each a POST whose body is its wrapper's schema in
``components``, with the headers and the answers documented, every reference resolving, and
each call a fresh document. That it is valid OpenAPI and what ``dispatcher schema --openapi``
prints are ``test_schemas.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dispatcher.contract import openapi
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.schemas import METADATA_NAME, METADATA_SCHEMA, definitions, described, wrapper_schema
from dispatcher.contract.wrapper import WEBHOOK_VERSION


def references(node: Any) -> Iterator[str]:
    """Every ``$ref`` in a document, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def test_the_document_lists_the_six_events_as_webhooks_and_no_path() -> None:
    document = openapi.openapi_document()
    assert document["openapi"] == "3.1.0" and document["paths"] == {}
    assert document["info"]["version"] == WEBHOOK_VERSION
    assert document["jsonSchemaDialect"] == "https://spec.openapis.org/oas/3.1/dialect/base"
    assert list(document["webhooks"]) == list(CATALOGUE)
    assert all(list(webhook) == ["post"] for webhook in document["webhooks"].values())


def test_each_webhook_is_its_events_model_with_its_wrappers_schema() -> None:
    document = openapi.openapi_document()
    schemas = document["components"]["schemas"]
    assert schemas[METADATA_NAME] == METADATA_SCHEMA
    for event, model in CATALOGUE.items():
        post = document["webhooks"][event]["post"]
        assert (post["operationId"], post["summary"]) == (event, model.summary)
        assert post["description"].startswith(described(model))
        assert post["description"].endswith(
            "Handle each `metadata.request_id` once: a delivery may arrive more than once."
        )
        body = post["requestBody"]
        assert body["required"] is True and list(body["content"]) == ["application/json"]
        name = f"{model.__name__}Webhook"
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}"}
        assert schemas[name] == wrapper_schema(model, openapi.REF)
        for part, schema in definitions(model, openapi.REF).items():
            assert schemas[part] == schema


def test_every_component_is_named_and_titled_as_the_classes_a_generator_writes() -> None:
    """``WebhookMetadata``, ``Medication``, then ``<Event>Data`` and ``<Event>Webhook`` for each
    event, each with its name as title (code generators name classes from them)."""
    schemas = openapi.openapi_document()["components"]["schemas"]
    names = [METADATA_NAME, "Medication"]
    for model in CATALOGUE.values():
        names += [f"{model.__name__}Data", f"{model.__name__}Webhook"]
    assert sorted(schemas) == sorted(names)
    assert all(schema["title"] == name for name, schema in schemas.items())
    order = schemas["OrderChangedWebhook"]["properties"]
    assert order["data"] == {"$ref": "#/components/schemas/OrderChangedData"}
    assert order["metadata"] == {"$ref": f"#/components/schemas/{METADATA_NAME}"}


def test_every_reference_resolves_to_a_component() -> None:
    document = openapi.openapi_document()
    found = set(references(document))
    assert "#/components/schemas/Medication" in found
    assert f"#/components/schemas/{METADATA_NAME}" in found
    for reference in found:
        assert reference.startswith("#/components/schemas/"), reference
        assert reference.removeprefix("#/components/schemas/") in document["components"]["schemas"]


def test_only_the_key_header_is_required_and_every_answer_says_what_the_sender_does() -> None:
    post = openapi.openapi_document()["webhooks"]["order_changed"]["post"]
    assert post["parameters"] == openapi.HEADERS and post["responses"] == openapi.RESPONSES
    required = [p["name"] for p in post["parameters"] if p["required"]]
    assert required == ["X-Webhook-Key"] and all(p["in"] == "header" for p in post["parameters"])
    assert "delivered" in post["responses"]["2XX"]["description"]
    assert "not retried" in post["responses"]["4XX"]["description"]
    assert "disabled" in post["responses"]["410"]["description"]
    for status in ("408", "425", "429", "5XX"):
        assert "retried" in post["responses"][status]["description"].lower(), status


def test_each_document_and_each_webhook_has_its_own_copies() -> None:
    first, second = openapi.openapi_document(), openapi.openapi_document()
    assert first == second and first is not second
    order = first["webhooks"]["order_changed"]["post"]
    order["parameters"][0]["required"] = False
    order["responses"]["2XX"]["description"] = "changed"
    assert first["webhooks"]["message_created"]["post"]["parameters"][0]["required"] is True
    first["components"]["schemas"][METADATA_NAME]["required"].clear()
    assert openapi.HEADERS[0]["required"] is True
    assert METADATA_SCHEMA["required"] and second["components"]["schemas"][METADATA_NAME]["required"]
    assert openapi.RESPONSES["2XX"]["description"].startswith("Success")
    assert (
        second["webhooks"]["order_changed"]["post"]
        == openapi.openapi_document()["webhooks"]["order_changed"]["post"]
    )

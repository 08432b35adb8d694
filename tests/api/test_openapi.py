"""The API's OpenAPI document: valid OpenAPI 3.1, one operation for every route of the app and
no other, the refusals every operation can make declared on each, served without a token; and
real answers of the API (over the test client, on real Redis and SQLite) are the ones the
document declares for their operation -- status, content type, required headers, body."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate
from starlette.routing import Match

from dispatcher.api import endpoints
from dispatcher.api.app import ROUTES
from dispatcher.api.openapi import ENDPOINT_ACTIONS, api_document
from dispatcher.contract.catalogue import CATALOGUE
from tests.api.conftest import Api, make_token

ENDPOINTS = [
    {"name": "pharmacy", "url": "http://127.0.0.1:9/hook", "key": "pharmacy-key-0123456789"},
    {"name": "lab", "url": "http://127.0.0.1:9/lab", "events": ["order_changed"]},
]
ORDER = {"event": "order_changed", "data": CATALOGUE["order_changed"].example()}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in api_document()["paths"].items():
        for method, found in item.items():
            yield path, method, found


def routed(path: str, method: str) -> int | None:
    """Which route of the app takes ``method`` on ``path`` (Starlette's first full match): its
    index in ``ROUTES``."""
    scope = {"type": "http", "path": path, "method": method.upper()}
    for index, route in enumerate(ROUTES):
        if route.matches(scope)[0] == Match.FULL:
            return index
    return None


def sample(path: str) -> str:
    """``path`` with each parameter given a value."""
    return re.sub(r"\{[^}]+\}", "some-name", path)


def test_the_document_is_valid_openapi_3_1() -> None:
    document = copy.deepcopy(api_document())
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_documented_operation_is_a_route_of_the_app() -> None:
    unrouted = [f"{m.upper()} {p}" for p, m, _ in operations() if routed(sample(p), m) is None]
    assert unrouted == []


def test_every_route_of_the_app_is_documented_with_each_method() -> None:
    """Each route and method is the first full match of some operation of the document; the
    endpoint actions' route is documented once per action it takes."""
    covered = {(routed(sample(p), m), m.upper()) for p, m, _ in operations()}
    missing = [
        f"{method} {route.path}"
        for index, route in enumerate(ROUTES)
        for method in sorted(set(route.methods or ()) - {"HEAD"})
        if (index, method) not in covered
    ]
    assert missing == []
    assert set(ENDPOINT_ACTIONS) == set(endpoints.ACTIONS)
    documented = {p.rsplit("/", 1)[1] for p, _, _ in operations() if p.startswith("/v1/endpoints/{name}/")}
    assert documented == set(endpoints.ACTIONS)


def test_operation_ids_are_unique_and_every_operation_declares_its_refusals() -> None:
    ids = [found["operationId"] for _, _, found in operations()]
    assert len(ids) == len(set(ids)) == 19
    for path, method, found in operations():
        statuses = set(found["responses"])
        if found["security"]:
            assert {"401", "403", "429", "503"} <= statuses, (method, path)
            (requirement,) = found["security"]
            assert requirement["bearer"][0] in ("send", "read", "operate")
        else:
            assert path in ("/v1/health", "/v1/openapi.json")
        if "requestBody" in found:
            assert {"400", "413", "415", "422"} <= statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)


def test_the_idempotency_headers_are_declared_on_both_event_routes() -> None:
    for path in ("/v1/events", "/v1/events/batch"):
        post = api_document()["paths"][path]["post"]
        assert [p["name"] for p in post["parameters"]] == ["Idempotency-Key"]
        assert "Idempotent-Replayed" in post["responses"]["202"]["headers"]
        assert post["responses"]["409"]["headers"]["Retry-After"]["required"] is True


def test_the_document_is_served_without_a_token(make_api: Callable[..., Api]) -> None:
    api = make_api()
    answer = api.call("GET", "/v1/openapi.json", token=None)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == api_document()


# --- real answers against the document -------------------------------------------------------


def validator(reference: str) -> Draft202012Validator:
    """A validator of the document's ``reference`` (``#/components/schemas/X``), formats checked."""
    root = {"components": api_document()["components"], "$ref": reference}
    return Draft202012Validator(root, format_checker=FormatChecker())


def conforms(answer: Any, path: str, method: str = "get") -> None:
    """``answer`` is one the document declares for the operation: its status, its media type,
    its required headers, and a body its schema takes."""
    declared = api_document()["paths"][path][method]["responses"]
    status = str(answer.status_code)
    assert status in declared, f"{method.upper()} {path} answered {status}: {answer.text}"
    response = declared[status]
    media = answer.headers["content-type"].split(";")[0]
    assert media in response["content"], (status, media)
    for name, found in response.get("headers", {}).items():
        assert name in answer.headers or not found["required"], name
    errors = list(validator(response["content"][media]["schema"]["$ref"]).iter_errors(answer.json()))
    assert errors == [], [e.message for e in errors]


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api(endpoints=ENDPOINTS)


def test_events_answers_conform(api: Api) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = api.call("POST", "/v1/events", json=ORDER, headers=headers)
    assert first.status_code == 202
    conforms(first, "/v1/events", "post")
    again = api.call("POST", "/v1/events", json=ORDER, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    conforms(again, "/v1/events", "post")
    batch = api.call("POST", "/v1/events/batch", json={"events": [ORDER, ORDER]})
    assert batch.status_code == 202
    conforms(batch, "/v1/events/batch", "post")
    bad = {**ORDER, "data": {**ORDER["data"], "order_number": 5}}
    for refused in (
        api.call("POST", "/v1/events", json=bad),
        api.call("POST", "/v1/events", content=b"{not json"),
        api.call("POST", "/v1/events", content=b"{}", headers={"Content-Type": "text/plain"}),
        api.call("POST", "/v1/events", json=ORDER, token="dsp_unknown"),
    ):
        assert refused.status_code in (422, 400, 415, 401)
        conforms(refused, "/v1/events", "post")


def test_deliveries_answers_conform(api: Api) -> None:
    request_id = api.call("POST", "/v1/events", json=ORDER).json()["deliveries"][0]["request_id"]
    conforms(api.call("GET", "/v1/deliveries?limit=1"), "/v1/deliveries")
    conforms(api.call("GET", "/v1/deliveries?limit=0"), "/v1/deliveries")
    conforms(api.call("GET", f"/v1/deliveries/{request_id}"), "/v1/deliveries/{request_id}")
    reader = make_token(api.runtime, "reader", ("read",))
    conforms(api.call("GET", f"/v1/deliveries/{request_id}", token=reader), "/v1/deliveries/{request_id}")
    conforms(api.call("GET", "/v1/deliveries/unknown"), "/v1/deliveries/{request_id}")
    retried = api.call("POST", f"/v1/deliveries/{request_id}/retry")
    assert retried.status_code == 409
    conforms(retried, "/v1/deliveries/{request_id}/retry", "post")
    forbidden = api.call("POST", f"/v1/deliveries/{request_id}/retry", token=reader)
    assert forbidden.status_code == 403
    conforms(forbidden, "/v1/deliveries/{request_id}/retry", "post")
    conforms(api.call("POST", "/v1/deliveries/retry", json={"dry_run": True}), "/v1/deliveries/retry", "post")


def test_endpoints_answers_conform(api: Api) -> None:
    conforms(api.call("GET", "/v1/endpoints"), "/v1/endpoints")
    conforms(api.call("GET", "/v1/endpoints/pharmacy"), "/v1/endpoints/{name}")
    new = {"name": "clinic", "url": "http://127.0.0.1:9/clinic", "events": ["order_changed"]}
    created = api.call("POST", "/v1/endpoints", json=new)
    assert created.status_code == 201
    conforms(created, "/v1/endpoints", "post")
    conforms(api.call("POST", "/v1/endpoints", json=new), "/v1/endpoints", "post")
    patched = api.call(
        "PATCH",
        "/v1/endpoints/clinic",
        content=b'{"max_attempts": 3}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    conforms(patched, "/v1/endpoints/{name}", "patch")
    for action, body in (
        ("disable", {"reason": "maintenance"}),
        ("enable", {"resend_held_back": True}),
        ("pause", None),
        ("resume", None),
        ("rotate-key", {"key": "clinic-key-0123456789"}),
        ("rotate-secret", {"grace_seconds": 60}),
    ):
        done = api.call("POST", f"/v1/endpoints/clinic/{action}", json=body)
        assert done.status_code == 200, done.text
        conforms(done, f"/v1/endpoints/{{name}}/{action}", "post")
    conforms(api.call("DELETE", "/v1/endpoints/clinic"), "/v1/endpoints/{name}", "delete")
    conforms(api.call("DELETE", "/v1/endpoints/clinic"), "/v1/endpoints/{name}", "delete")


def test_service_answers_conform(api: Api) -> None:
    conforms(api.call("GET", "/v1/health", token=None), "/v1/health")
    conforms(api.call("GET", "/v1/openapi.json", token=None), "/v1/openapi.json")

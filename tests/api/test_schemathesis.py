"""Schemathesis against the API served by real uvicorn, on real Redis and a real database:
for every operation of the served OpenAPI document, generated requests (valid and not) get no
5xx, and every response -- status, content type, headers, body -- is one the document declares."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dispatcher import CATALOGUE, dispatch
from dispatcher.api.app import create_app
from dispatcher.api.openapi import api_document
from tests.console.served import served

from .conftest import Api

ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "events": ["*"], "key": "schemathesis-key-1"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "events": ["order_changed"]},
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def live(make_api: Callable[..., Api]) -> Iterator[tuple[str, str]]:
    """The API served by uvicorn, with some deliveries in the log: its base URL and a token of
    every scope. The document it serves is the one the cases come from."""
    api = make_api(endpoints=ENDPOINTS, api={"rate_limit": "off"})
    for event in ("order_changed", "encounter_cancelled"):
        dispatch(event, copy.deepcopy(CATALOGUE[event].example()))
    with served(create_app(api.runtime)) as base:
        assert requests.get(f"{base}/v1/openapi.json", timeout=10).json() == api_document()
        yield base, api.token


schema = schemathesis.openapi.from_dict(api_document())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_conforms_and_never_answers_5xx(case: Any, live: tuple[str, str]) -> None:
    base, token = live
    case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

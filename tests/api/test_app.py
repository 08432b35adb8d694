"""The API app's refusals: Starlette's own (no route, wrong method) as problems, a database or
Redis that does not answer as a 503, and an unexpected error as a 500 that quotes nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from dispatcher.api import endpoints
from dispatcher.api.app import create_app
from dispatcher.logs import process_logger
from dispatcher.runtime import Runtime

from .conftest import Api

DEAD_PG = "postgresql+psycopg://postgres@127.0.0.1:1/test"


def test_an_unknown_route_is_a_404_problem(make_api: Callable[..., Api]) -> None:
    api = make_api()
    response = api.call("GET", "/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "openapi.json" in response.json()["detail"]


def test_a_wrong_method_lists_every_method_the_path_takes(make_api: Callable[..., Api]) -> None:
    api = make_api()
    response = api.call("PUT", "/v1/endpoints/partner-a")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    assert response.json()["status"] == 405


def test_a_database_that_does_not_answer_is_a_503(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime(database_url=DEAD_PG)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        response = client.get("/v1/endpoints", headers={"Authorization": "Bearer dsp_any"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"] == "the database did not answer; nothing was done: retry shortly"
    assert "127.0.0.1:1" not in response.text


def test_an_unexpected_error_is_a_500_that_quotes_nothing(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api()

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("patient Jane Doe, DOB 1970-01-01")

    monkeypatch.setattr(endpoints, "endpoint_rows", broken)
    logger = process_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            response = api.call("GET", "/v1/endpoints")
    finally:
        logger.removeHandler(caplog.handler)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "Jane" not in response.text
    (line,) = [r.getMessage() for r in caplog.records if "a request failed" in r.getMessage()]
    assert "RuntimeError" in line and "/v1/endpoints" in line
    assert "Jane" not in caplog.text

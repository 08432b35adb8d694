"""The API over a test's own runtime (SQLite unless a test says otherwise, Redis DB of the
suite), reached through Starlette's test client; and API tokens made through the ops door as
``dispatcher api tokens create`` makes them."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from dispatcher import CATALOGUE, store
from dispatcher.api.app import create_app
from dispatcher.ops.api_tokens import CreateToken
from dispatcher.ops.door import Actor
from dispatcher.runtime import Runtime

ALL_SCOPES = ("send", "read", "operate", "read:payload")


def example(event: str = "order_changed") -> dict[str, Any]:
    """The seed's example data of ``event`` (a copy to change)."""
    return copy.deepcopy(CATALOGUE[event].example())


def stored(runtime: Runtime) -> int:
    """How many deliveries the log holds."""
    return sum(store.status_counts(runtime.engine).values())


def make_token(runtime: Runtime, name: str, scopes: tuple[str, ...] = ALL_SCOPES) -> str:
    """A new API token for ``scopes`` (its secret text)."""
    return CreateToken(name, scopes).carry_out(runtime, Actor("test-operator")).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """A test client for the API of one runtime, with a token of every scope by default."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.client = TestClient(create_app(runtime), raise_server_exceptions=False)
        self.token = make_token(runtime, "test-all")

    def call(self, method: str, path: str, token: str | None = "", **kwargs: Any) -> Any:
        """A request with ``token`` (default: the all-scopes one; None: no Authorization)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token or self.token}")
        return self.client.request(method, path, headers=headers, **kwargs)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def make_api(make_runtime: Callable[..., Runtime]) -> Iterator[Callable[..., Api]]:
    """``make_api(**settings)``: a runtime as ``make_runtime`` builds it, and its API."""
    made: list[Api] = []

    def make(**kwargs: Any) -> Api:
        api = Api(make_runtime(**kwargs))
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()

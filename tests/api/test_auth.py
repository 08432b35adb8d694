"""Bearer tokens on real Redis and a real database: unknown, revoked and out-of-scope tokens are
refused, a revoke is seen at the next request, the rate limit answers 429, and a token is never
repeated back."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dispatcher.api import auth
from dispatcher.api.auth import Gate
from dispatcher.api.problems import ApiProblem
from dispatcher.ops import api_tokens
from dispatcher.ops.door import Actor
from dispatcher.store import api_tokens as stored_tokens
from dispatcher.times import utcnow

from .conftest import Api, make_token


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


def refusal(gate: Gate, token: str, scope: str) -> ApiProblem:
    with pytest.raises(ApiProblem) as caught:
        gate.check(token, scope)
    return caught.value


def test_a_token_is_known_by_its_hash_and_scopes(api: Api) -> None:
    gate = Gate(api.runtime, api.runtime.redis)
    token = make_token(api.runtime, "svc-orders", ("send",))
    caller = gate.check(token, "send")
    assert caller.name == "svc-orders" and caller.scopes == frozenset({"send"})
    problem = refusal(gate, token, "read")
    assert problem.status == 403 and token not in str(problem.detail)
    assert refusal(gate, token + "x", "send").status == 401


def test_a_revoked_token_is_refused_at_its_next_request(api: Api) -> None:
    gate = Gate(api.runtime, api.runtime.redis)
    token = make_token(api.runtime, "svc-gone", ("send",))
    assert gate.check(token, "send").name == "svc-gone"
    api_tokens.RevokeToken("svc-gone").carry_out(api.runtime, Actor("op"))
    assert refusal(gate, token, "send").status == 401


def test_a_revoke_while_redis_was_away_is_seen_within_the_reload(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(api.runtime, api.runtime.redis)
    token = make_token(api.runtime, "svc-quiet", ("send",))
    gate.check(token, "send")
    stored_tokens.revoke(api.runtime.engine, "svc-quiet")  # no generation raised
    assert gate.check(token, "send").name == "svc-quiet"  # the cache still has it
    monkeypatch.setattr(auth, "RELOAD_SECONDS", 0.0)
    assert refusal(gate, token, "send").status == 401


def test_a_token_created_by_another_process_is_found(api: Api) -> None:
    gate = Gate(api.runtime, api.runtime.redis)
    first = make_token(api.runtime, "svc-one", ("send",))
    gate.check(first, "send")
    stored_tokens.create(
        api.runtime.engine,
        "svc-two",
        api_tokens.token_hash("dsp_two"),
        ("send",),
        utcnow(),
    )
    api.runtime.redis.incr(api_tokens.GENERATION_KEY)
    assert gate.check("dsp_two", "send").name == "svc-two"


def test_over_the_rate_limit_is_429_with_retry_after(make_api: Callable[..., Api]) -> None:
    api = make_api(api={"rate_limit": {"per_second": 0.01, "burst": 2}})
    statuses = [api.call("GET", "/v1/endpoints").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = api.call("GET", "/v1/endpoints")
    assert 90 <= int(response.headers["retry-after"]) <= 100
    assert response.headers["content-type"] == "application/problem+json"


def test_the_last_use_is_recorded(api: Api) -> None:
    token = make_token(api.runtime, "svc-used", ("read",))
    assert stored_tokens.named(api.runtime.engine, "svc-used").last_used_at is None  # type: ignore[union-attr]
    assert api.call("GET", "/v1/endpoints", token=token).status_code == 200
    assert stored_tokens.named(api.runtime.engine, "svc-used").last_used_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "token abc"])
def test_a_missing_or_malformed_authorization_is_401(api: Api, header: str) -> None:
    response = api.call(
        "GET", "/v1/endpoints", token=None, headers={"Authorization": header} if header else {}
    )
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]

"""What an idempotency key covers (issue 21 #7), against the real Redis, on SQLite and
PostgreSQL: everything that changes what is sent or to whom -- the event, its data, the
endpoints asked for, the ordering key and dispatched_by. A repeat that differs in any of them is
an IdempotencyConflict and sends nothing; the same dispatch again gets the first call's ids."""

from __future__ import annotations

import json

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dispatcher import dispatch, dispatch_many, store
from dispatcher.contract import catalogue as events
from dispatcher.contract.validation import validate
from dispatcher.errors import IdempotencyConflict
from dispatcher.intake.keys import idempotency_for
from dispatcher.intake.outbox import dispatch_in_transaction
from dispatcher.store.sealing import Keyring, new_key

ORDER = events.CATALOGUE["order_changed"].example()
ENDPOINTS = [
    {"name": "first", "url": "http://127.0.0.1:9/a", "key": "key-a-123"},
    {"name": "second", "url": "http://127.0.0.1:9/b", "key": "key-b-456", "ordered": True},
]


def rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.DELIVERIES)).scalar_one()


def queued(redis_client: redis.Redis) -> int:
    return redis_client.llen("rq:queue:send-webhook-request")


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=ENDPOINTS)


@pytest.mark.parametrize(
    "changed",
    [
        {"endpoints": ["second"]},
        {"ordering_key": "encounter-9"},
        {"dispatched_by": "DR-7"},
    ],
    ids=["endpoints", "ordering_key", "dispatched_by"],
)
def test_a_repeat_that_changes_what_is_sent_or_to_whom_is_a_conflict(runtime, redis_client, changed) -> None:
    first = dispatch("order_changed", ORDER, idempotency_key="K-1")
    assert len(first) == 2 and rows(runtime.engine) == 2 and queued(redis_client) == 2
    with pytest.raises(IdempotencyConflict) as caught:
        dispatch("order_changed", ORDER, idempotency_key="K-1", **changed)
    assert "idempotency_key 'K-1' was already used" in str(caught.value)
    assert rows(runtime.engine) == 2 and queued(redis_client) == 2  # nothing stored, nothing sent
    assert dispatch("order_changed", ORDER, idempotency_key="K-1") == first  # the same dispatch: a repeat


def test_the_same_scope_again_is_a_repeat_and_the_order_of_endpoints_does_not_matter(runtime) -> None:
    scope = {"ordering_key": "encounter-1", "dispatched_by": "DR-1"}
    first = dispatch("order_changed", ORDER, idempotency_key="K-2", endpoints=["first", "second"], **scope)
    again = dispatch("order_changed", ORDER, idempotency_key="K-2", endpoints=["second", "first"], **scope)
    assert again == first and rows(runtime.engine) == 2
    with pytest.raises(IdempotencyConflict):  # every subscriber is not the same as a named list
        dispatch("order_changed", ORDER, idempotency_key="K-2", **scope)
    with pytest.raises(IdempotencyConflict):  # the same endpoint twice sends twice
        dispatch(
            "order_changed", ORDER, idempotency_key="K-2", endpoints=["first", "first", "second"], **scope
        )


def test_dispatch_many_and_the_outbox_have_the_same_scope(runtime, redis_client) -> None:
    first = dispatch_many("order_changed", [ORDER], idempotency_keys=["M-1"], ordering_keys=["enc-1"])
    with pytest.raises(IdempotencyConflict):
        dispatch_many("order_changed", [ORDER], idempotency_keys=["M-1"], ordering_keys=["enc-2"])
    with pytest.raises(IdempotencyConflict):  # within one call too
        dispatch_many(
            "order_changed", [ORDER, ORDER], idempotency_keys=["M-2", "M-2"], ordering_keys=["a", "b"]
        )
    assert dispatch_many("order_changed", [ORDER], idempotency_keys=["M-1"], ordering_keys=["enc-1"]) == first

    with Session(runtime.engine) as session:
        outboxed = dispatch_in_transaction(session, "order_changed", ORDER, idempotency_key="O-1")
        session.commit()
    with Session(runtime.engine) as session, pytest.raises(IdempotencyConflict):
        dispatch_in_transaction(session, "order_changed", ORDER, idempotency_key="O-1", endpoints=["second"])
    with Session(runtime.engine) as session:
        assert dispatch_in_transaction(session, "order_changed", ORDER, idempotency_key="O-1") == outboxed
        session.commit()
    assert rows(runtime.engine) == 4 and queued(redis_client) == 4


def test_a_default_dispatch_keeps_the_fingerprint_keys_were_recorded_with_before() -> None:
    """Keys recorded before the scope counted (event and data only) still repeat after an
    upgrade, for a dispatch that gives none of the new fields."""
    keyring = Keyring([new_key()])
    data = validate("order_changed", ORDER)
    before = json.dumps(
        {"event": "order_changed", "data": data}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    key = idempotency_for(keyring, "order_changed", data, "K", dispatched_by="SYSTEM")
    assert key.fingerprints == tuple(keyring.candidates(before))
    scoped = idempotency_for(keyring, "order_changed", data, "K", endpoints=["first"])
    assert scoped.fingerprints[0] != key.fingerprints[0]

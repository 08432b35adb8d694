"""Idempotent dispatch against the real Redis, on SQLite and PostgreSQL: a repeat returns the
first call's request ids and stores, queues and sends nothing; another event or other data under
the same key is refused; two processes racing with one key make one set of deliveries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from dispatcher import dispatch, dispatch_many, store
from dispatcher.contract import catalogue as events
from dispatcher.errors import IdempotencyConflict, InvalidDispatchArgument
from dispatcher.intake.outbox import dispatch_in_transaction
from dispatcher.times import utcnow
from tests.conftest import ROOT, settings_dict

ORDER = events.CATALOGUE["order_changed"].example()
ENDPOINTS = [
    {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123"},
    {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "key-b-456"},
]


def rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.DELIVERIES)).scalar_one()


def queued(redis_client: redis.Redis) -> int:
    return redis_client.llen("rq:queue:send-webhook-request")


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(database_url=database_url, endpoints=ENDPOINTS)


def test_a_repeat_returns_the_first_ids_and_stores_and_queues_nothing(runtime, redis_client) -> None:
    first = dispatch("order_changed", ORDER, idempotency_key="backend-req-42")
    assert len(first) == 2 and rows(runtime.engine) == 2 and queued(redis_client) == 2
    again = dispatch("order_changed", dict(ORDER), idempotency_key="backend-req-42")
    assert again == first
    assert rows(runtime.engine) == 2 and queued(redis_client) == 2
    other = dispatch("order_changed", ORDER, idempotency_key="backend-req-43")
    assert set(other).isdisjoint(first) and rows(runtime.engine) == 4


def test_the_same_key_for_another_event_or_other_data_is_refused(runtime) -> None:
    dispatch("order_changed", ORDER, idempotency_key="k-1")
    with pytest.raises(IdempotencyConflict) as caught:
        dispatch("order_changed", {**ORDER, "status": "cancelled"}, idempotency_key="k-1")
    assert "idempotency_key 'k-1' was already used for a different dispatch (event, data," in str(
        caught.value
    )
    assert isinstance(caught.value, ValueError)
    with pytest.raises(IdempotencyConflict):
        dispatch("message_created", events.CATALOGUE["message_created"].example(), idempotency_key="k-1")
    assert rows(runtime.engine) == 2


def test_an_expired_key_dispatches_again(runtime) -> None:
    first = dispatch("order_changed", ORDER, idempotency_key="k-old")
    with runtime.engine.begin() as conn:
        conn.execute(store.IDEMPOTENCY.update().values(created_at=utcnow() - timedelta(days=2)))
    second = dispatch("order_changed", ORDER, idempotency_key="k-old")
    assert set(second).isdisjoint(first) and rows(runtime.engine) == 4


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "must be 1 to 255 characters, got 0"),
        ("x" * 256, "must be 1 to 255 characters, got 256"),
        (42, "expected a string, got int"),
    ],
)
def test_a_bad_key_is_refused_by_name_and_nothing_is_stored(runtime, key, problem) -> None:
    with pytest.raises(InvalidDispatchArgument) as caught:
        dispatch("order_changed", ORDER, idempotency_key=key)
    assert str(caught.value) == f"idempotency_key: {problem}; nothing was dispatched"
    with pytest.raises(InvalidDispatchArgument, match=r"^ordering_keys\[1\]: must be 1 to 255"):
        dispatch_many("order_changed", [ORDER, ORDER], ordering_keys=["a", "y" * 300])
    assert rows(runtime.engine) == 0


def test_dispatch_many_with_one_key_per_item(runtime, redis_client) -> None:
    other = {**ORDER, "order_number": "ORDER-2"}
    first = dispatch_many("order_changed", [ORDER, other], idempotency_keys=["m-1", None])
    assert len(first) == 4 and rows(runtime.engine) == 4
    again = dispatch_many("order_changed", [ORDER, other, ORDER], idempotency_keys=["m-1", "m-2", "m-1"])
    assert again[:2] == first[:2]  # m-1 repeated: the first call's ids
    assert again[4:] == first[:2]  # repeated within the call too
    assert set(again[2:4]).isdisjoint(first) and rows(runtime.engine) == 6
    with pytest.raises(IdempotencyConflict):
        dispatch_many("order_changed", [ORDER, other], idempotency_keys=["m-3", "m-3"])
    with pytest.raises(IdempotencyConflict):  # one conflict rejects the whole batch
        dispatch_many("order_changed", [other, other], idempotency_keys=["m-4", "m-1"])
    assert rows(runtime.engine) == 6


def test_the_outbox_takes_a_key_and_a_rollback_forgets_it(runtime, redis_client) -> None:
    with Session(runtime.engine) as session:
        rolled_back = dispatch_in_transaction(session, "order_changed", ORDER, idempotency_key="o-1")
        session.rollback()
    with Session(runtime.engine) as session:
        first = dispatch_in_transaction(session, "order_changed", ORDER, idempotency_key="o-1")
        session.commit()
    assert set(first).isdisjoint(rolled_back)
    with Session(runtime.engine) as session:
        assert dispatch_in_transaction(session, "order_changed", ORDER, idempotency_key="o-1") == first
        session.commit()
    assert rows(runtime.engine) == 2 and queued(redis_client) == 2


RACER = """
import json, sys, time
from dispatcher import dispatch
start = float(sys.argv[1])
time.sleep(max(0, start - time.time()))
print(json.dumps(dispatch("order_changed", json.loads(sys.argv[2]), idempotency_key="race-1")))
"""


def test_two_processes_racing_with_one_key_make_one_set_of_deliveries(
    runtime, tmp_path, redis_client
) -> None:
    raw = settings_dict(
        redis_url=runtime.settings.redis_url,
        database_url=runtime.settings.database_url,
        tmp_path=tmp_path,
        endpoints=ENDPOINTS,
    )
    config = tmp_path / "racers.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {"DISPATCHER_CONFIG": str(config), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    start = time.time() + 1.5
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(start), json.dumps(ORDER)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    answers = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        answers.append(json.loads(out.strip().splitlines()[-1]))
    assert all(answer == answers[0] for answer in answers) and len(answers[0]) == 2
    assert rows(runtime.engine) == 2 and queued(redis_client) == 2

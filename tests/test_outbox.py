"""The transactional outbox: an event exists if and only if the caller's commit does."""

from __future__ import annotations

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dispatcher import events, store
from dispatcher.outbox import dispatch_in_transaction

ORDERS = sa.Table("caller_orders", sa.MetaData(), sa.Column("id", sa.String, primary_key=True))


def _setup(make_runtime, receiver):
    runtime = make_runtime(endpoints=[{"name": "partner-a", "url": receiver.url, "key": "k-123"}])
    ORDERS.metadata.create_all(runtime.engine)
    return runtime


def test_commit_stores_and_queues_at_once(make_runtime, receiver, redis_client: redis.Redis):
    runtime = _setup(make_runtime, receiver)
    with Session(runtime.engine) as session:
        session.execute(ORDERS.insert().values(id="ORDER123"))
        (request_id,) = dispatch_in_transaction(
            session, "order_changed", events.CATALOGUE["order_changed"].example()
        )
        assert redis_client.exists(f"rq:job:{request_id}") == 0  # nothing queued before the commit
        session.commit()
    assert store.get_delivery(runtime.engine, request_id)["status"] == "queued"
    assert redis_client.exists(f"rq:job:{request_id}") == 1
    assert request_id.encode() in redis_client.lrange("rq:queue:send-webhook-request", 0, -1)


def test_rollback_leaves_no_trace(make_runtime, receiver, redis_client: redis.Redis):
    runtime = _setup(make_runtime, receiver)
    with Session(runtime.engine) as session:
        session.execute(ORDERS.insert().values(id="ORDER999"))
        (request_id,) = dispatch_in_transaction(
            session, "order_changed", events.CATALOGUE["order_changed"].example()
        )
        session.rollback()
        session.execute(ORDERS.insert().values(id="ORDER1000"))
        session.commit()  # a later commit in the same session must not queue the rolled-back id
    assert store.get_delivery(runtime.engine, request_id) is None
    assert redis_client.exists(f"rq:job:{request_id}") == 0
    with runtime.engine.connect() as conn:
        assert conn.execute(sa.select(ORDERS.c.id)).scalars().all() == ["ORDER1000"]

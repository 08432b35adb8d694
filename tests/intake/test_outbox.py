"""The transactional outbox: an event exists if and only if the caller's commit does."""

from __future__ import annotations

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dispatcher import store
from dispatcher.contract import catalogue as events
from dispatcher.intake.outbox import dispatch_in_transaction

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


def test_a_sqlmodel_session_as_the_readme_shows(make_runtime, receiver, redis_client: redis.Redis):
    """The README's example: a backend on SQLModel dispatches through its own session, and can
    read the log's tables through it too."""
    import sqlmodel

    from dispatcher.outbox import dispatch_in_transaction as readme_import

    runtime = _setup(make_runtime, receiver)
    with sqlmodel.Session(runtime.engine) as session:
        session.execute(ORDERS.insert().values(id="ORDER777"))
        (request_id,) = readme_import(session, "order_changed", events.CATALOGUE["order_changed"].example())
        session.commit()
        row = session.execute(
            sqlmodel.select(store.WebhookEventTransactionLog).where(
                store.WebhookEventTransactionLog.c.request_id == request_id
            )
        ).all()
        assert row == []  # not attempted yet
    assert store.get_delivery(runtime.engine, request_id)["status"] == "queued"
    assert redis_client.exists(f"rq:job:{request_id}") == 1


def test_the_outbox_seals_the_payload_written_through_the_callers_own_engine(make_runtime, receiver):
    """The caller's engine knows no storage keys: the payload is sealed before it is handed over."""
    from dispatcher.store.sealing import PREFIX, new_key

    runtime = make_runtime(
        endpoints=[{"name": "partner-a", "url": receiver.url, "key": "k-123"}], storage_keys=[new_key()]
    )
    runtime.engine  # noqa: B018 - the log's tables exist
    callers_engine = sa.create_engine(runtime.settings.database_url)
    with Session(callers_engine) as session:
        (request_id,) = dispatch_in_transaction(
            session, "order_changed", events.CATALOGUE["order_changed"].example()
        )
        session.commit()
    with callers_engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT payload FROM webhook_deliveries").scalar_one()
    callers_engine.dispose()
    assert raw.startswith(PREFIX) and "ORDER" not in raw
    assert '"order_changed"' in store.get_delivery(runtime.engine, request_id)["payload"]


def test_an_outbox_dispatch_span_lasts_until_the_commit_and_its_job_carries_it(
    make_runtime, receiver, redis_client: redis.Redis
):
    """With telemetry on, the outbox's ``dispatch`` span ends at the caller's commit, when the
    job is queued carrying its context; a rollback ends it as an error."""
    import pytest

    pytest.importorskip("opentelemetry.sdk")
    from dispatcher import telemetry
    from dispatcher.queue import TRACE_FIELD
    from tests.otlp_receiver import OtlpReceiver

    otlp = OtlpReceiver().start()
    try:
        runtime = make_runtime(
            endpoints=[{"name": "partner-a", "url": receiver.url, "key": "k-123"}],
            telemetry={"otlp_endpoint": otlp.url},
        )
        ORDERS.metadata.create_all(runtime.engine)
        example = events.CATALOGUE["order_changed"].example()
        with Session(runtime.engine) as session:
            (committed,) = dispatch_in_transaction(session, "order_changed", example)
            session.commit()
            dispatch_in_transaction(session, "order_changed", example)
            session.rollback()
        telemetry.flush()
        spans = otlp.wait_for(lambda got: len(got) >= 2)
    finally:
        telemetry.shutdown()
        otlp.stop()
    ok, rolled_back = sorted(
        (s for s in spans if s.name == "dispatch"), key=lambda s: "error.type" in s.attributes
    )
    assert ok.attributes == {"webhook.event": "order_changed", "webhook.deliveries": 1}
    assert rolled_back.attributes["error.type"] == "rollback" and rolled_back.status_code == 2
    carried = redis_client.hget(f"rq:job:{committed}", TRACE_FIELD).decode()
    assert carried.split("-")[1:3] == [ok.trace_id, ok.span_id]

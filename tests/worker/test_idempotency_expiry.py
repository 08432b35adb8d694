"""Idempotency keys expire (issue 21 #8), against the real Redis, on SQLite and PostgreSQL: the
workers' retention round and ``dispatcher retention run`` delete the keys recorded more than
``idempotency_ttl`` ago -- even when ``retention`` keeps every delivery -- and say how many; a
key used again after its TTL makes new deliveries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from dispatcher.times import utcnow
from dispatcher.worker import retention

ORDER = events.CATALOGUE["order_changed"].example()
ENDPOINTS = [{"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-a-123"}]
TTL_SECONDS = 3600


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def keys_stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.IDEMPOTENCY)).scalar_one()


def age_keys(engine, seconds: float) -> None:
    """Every key recorded so far, as if recorded ``seconds`` ago."""
    with engine.begin() as conn:
        conn.execute(store.IDEMPOTENCY.update().values(created_at=utcnow() - timedelta(seconds=seconds)))


@pytest.fixture
def runtime(make_runtime, database_url: str):
    # No `retention` section: the log keeps every delivery, and keys still expire.
    return make_runtime(database_url=database_url, endpoints=ENDPOINTS, idempotency_ttl=TTL_SECONDS)


def test_the_workers_retention_round_deletes_expired_keys_and_the_key_is_free_again(runtime) -> None:
    first = dispatch("order_changed", ORDER, idempotency_key="old-1")
    dispatch("order_changed", ORDER, idempotency_key="old-2")
    age_keys(runtime.engine, TTL_SECONDS + 60)
    young = dispatch("order_changed", ORDER, idempotency_key="young")
    assert keys_stored(runtime.engine) == 3

    report = retention.apply_if_due(runtime)
    assert keys_stored(runtime.engine) == 1  # only the young key is left
    assert report is not None and report.finished
    assert (report.idempotency_keys_to_delete, report.idempotency_keys_deleted) == (2, 2)
    assert report.as_dict()["idempotency_keys_deleted"] == 2
    assert retention.apply_if_due(runtime) is None  # once an hour, one worker at a time

    again = dispatch("order_changed", ORDER, idempotency_key="old-1")
    assert set(again).isdisjoint(first)  # past its TTL the key makes new deliveries
    assert dispatch("order_changed", ORDER, idempotency_key="young") == young  # within it, a repeat


def test_retention_run_reports_and_deletes_expired_keys(runtime) -> None:
    dispatch("order_changed", ORDER, idempotency_key="old-1")
    age_keys(runtime.engine, TTL_SECONDS + 60)
    dispatch("order_changed", ORDER, idempotency_key="young")

    dry = invoke("retention", "run", "--dry-run", "--json")
    text = invoke("retention", "run", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert keys_stored(runtime.engine) == 2  # a dry run deletes nothing

    result = invoke("retention", "run", "--json")
    assert result.exit_code == 0, result.output
    assert keys_stored(runtime.engine) == 1
    report = json.loads(result.stdout)
    assert report["idempotency_keys_deleted"] == 1 and report["deleted"] == 0  # the old names stay
    planned = json.loads(dry.stdout)
    assert (planned["idempotency_keys_to_delete"], planned["idempotency_keys_deleted"]) == (1, 0)
    assert "1 idempotency key past idempotency_ttl to delete" in text.stdout
    assert "nothing to do" in invoke("retention", "run").stdout

"""The code under test in the benchmark process: its configuration, a runtime for ``dispatch()``,
queuing a backlog, and reading the transaction log. The only harness module importing
``dispatcher`` (the package's public names only)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dispatcher import dispatch_many, store
from dispatcher.config import parse_settings
from dispatcher.contract.catalogue import get_event
from dispatcher.intake import DispatchRequest
from dispatcher.intake.prepare import prepare_request
from dispatcher.runtime import Runtime, set_runtime
from dispatcher.vocabulary import DeliveryStatus

from . import BATCH, EVENT
from .config import write_config


def our_config(
    tmp: Path,
    name: str,
    url: str,
    database_url: str,
    threads: int | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """A worker configuration; ``threads`` is ``worker.threads`` (the default when None); ``extra``
    more top-level settings."""
    path, raw = write_config(tmp, name, url, database_url, threads, extra)
    parse_settings(raw, env={})  # fail here, not in a worker, on a bad config
    return path, raw


@contextmanager
def driver_runtime(raw: dict[str, Any]) -> Iterator[Runtime]:
    """This process's runtime for ``dispatch()``, built from the same configuration as the workers."""
    runtime = Runtime(parse_settings(raw, env={}), worker_name="bench-driver")
    previous = set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(previous)
        runtime.close()


def sample_data() -> dict[str, Any]:
    return get_event(EVENT).example()


def sample_body(raw: dict[str, Any]) -> bytes:
    settings = parse_settings(raw, env={})
    (delivery,) = prepare_request(settings, [DispatchRequest(EVENT, sample_data())], disabled=())
    return delivery.payload.encode()


def queue_backlog(count: int, batch: int = BATCH) -> float:
    """dispatch_many ``count`` events through the installed runtime; returns the seconds it took."""
    data = sample_data()
    started = time.perf_counter()
    left = count
    while left > 0:
        n = min(batch, left)
        dispatch_many(EVENT, [data] * n)
        left -= n
    return time.perf_counter() - started


# --- the transaction log --------------------------------------------------------------------


def reset_database(url: str) -> None:
    """An empty transaction log: a fresh SQLite file, or every PostgreSQL table dropped (the code
    under test makes its schema on first use, whichever version it is)."""
    if url.startswith("sqlite"):
        path = Path(sa.engine.make_url(url).database)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in sa.inspect(conn).get_table_names():
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    engine.dispose()
    store.create_store_engine(url).dispose()


def db_engine(url: str) -> sa.Engine:
    return store.create_store_engine(url)


def delivery_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.DELIVERIES.c.status, sa.func.count()).group_by(store.DELIVERIES.c.status)
        ).all()
    return {status: count for status, count in rows}


def delivered_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(store.DELIVERIES.c.status == DeliveryStatus.DELIVERED)
        ).scalar_one()


def attempt_summary(engine: sa.Engine) -> dict[str, Any]:
    """Rows, distinct deliveries and the first-claim-to-last-record span, from the database."""
    d, a = store.DELIVERIES.c, store.ATTEMPTS.c
    with engine.connect() as conn:
        rows, distinct = conn.execute(
            sa.select(sa.func.count(), sa.func.count(a.request_id.distinct()))
        ).one()
        first, last = conn.execute(
            sa.select(sa.func.min(d.attempt_started_at), sa.func.max(d.updated_at))
        ).one()
    span = (last - first).total_seconds() if first is not None and last is not None else None
    return {"attempt_rows": rows, "distinct_deliveries": distinct, "db_span_s": span}

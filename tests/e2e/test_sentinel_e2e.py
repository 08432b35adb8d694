"""Redis behind Sentinel, for real: a primary, a replica and three ``redis-sentinel`` processes
on loopback ports (:mod:`tests.sentinel`), the primary killed with SIGKILL.

The dispatcher is given only the ``redis+sentinel://`` URL; nothing in it is told of the
failover. Workers, the scheduler they fork, reconcile and ``dispatch()`` must find the new
primary themselves, and every event dispatched before, during and after must end final, none
lost, none in flight twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dispatcher import dispatch, store
from dispatcher.errors import DispatcherError
from dispatcher.queue.connection import connect
from dispatcher.vocabulary import DeliveryStatus
from tests.conftest import wait_for
from tests.e2e.test_faults import EVENT, check_and_record, endpoint, example, wait_final
from tests.sentinel import SentinelSet, sentinel_binary

pytestmark = pytest.mark.skipif(
    sentinel_binary() is None, reason="redis-sentinel is not installed (apt-get install redis-sentinel)"
)


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    with SentinelSet(tmp_path / "sentinel") as topology:
        yield topology


def test_a_client_follows_the_primary_through_a_failover(sentinels: SentinelSet) -> None:
    client = connect(sentinels.url)
    client.set("dispatcher:test", "before")
    old = sentinels.kill_primary()
    errors: list[str] = []
    deadline = time.monotonic() + 30
    while True:
        try:
            client.set("dispatcher:test", "after")
            break
        except redis.ConnectionError as exc:  # MasterNotFoundError is one: no primary yet
            errors.append(type(exc).__name__)
            assert time.monotonic() < deadline, f"no new primary after 30 s: {errors[-3:]}"
            time.sleep(0.05)
    host, port = client.connection_pool.get_master_address()
    assert (host, port) == ("127.0.0.1", sentinels.data_ports[1]) and port != old
    assert errors, "the write right after the kill should have failed once"
    with redis.Redis(port=port) as new_primary:
        assert new_primary.get("dispatcher:test") == b"after"
        assert new_primary.info("replication")["role"] == "master"


def test_the_password_in_a_sentinel_url_is_the_primarys_and_never_shown(sentinels: SentinelSet) -> None:
    for port in sentinels.data_ports:
        with redis.Redis(port=port) as server:
            server.config_set("requirepass", "s3cret-pass")
            server.config_set("masterauth", "s3cret-pass")
    url = sentinels.url.replace("redis+sentinel://", "redis+sentinel://:s3cret-pass@")
    assert connect(url).ping() is True
    wrong = url.replace("s3cret-pass", "wrong")
    with pytest.raises(redis.AuthenticationError):
        connect(wrong).ping()


@pytest.mark.slow
def test_the_primary_killed_under_load_loses_nothing(
    make_runtime, write_config, start_worker, receiver, pg_url, sentinels: SentinelSet, tmp_path
) -> None:
    """Steady load from a dispatching thread and two workers; SIGKILL to the primary; every
    event ends delivered, none twice in flight; the gap is printed."""
    runtime = make_runtime(endpoints=[endpoint(receiver)], redis_url=sentinels.url, database_url=pg_url)
    config = write_config(endpoints=[endpoint(receiver)], redis_url=sentinels.url, database_url=pg_url)
    workers = [start_worker(config, name=f"sentinel-worker-{n}") for n in (1, 2)]

    dispatched: list[tuple[float, str]] = []
    refused: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            at = time.time()
            try:
                dispatched.extend((at, rid) for rid in dispatch(EVENT, example()))
            except DispatcherError as exc:  # a clear error is allowed; nothing may be half stored
                refused.append(exc)
            stop.wait(0.02)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(3)  # load before the kill; on a loaded machine the workers may start later
        wait_for(lambda: bool(receiver.request_ids()), timeout=60, message="a delivery before the kill")
        killed_at = time.time()
        sentinels.kill_primary()
        sentinels.wait_failover()
        failover_at = time.time()
        time.sleep(5)  # the load goes on through the new primary
    finally:
        stop.set()
        loader.join(timeout=30)

    ids = [rid for _, rid in dispatched]
    rows = wait_final(runtime, ids, timeout=150)
    after_kill = {rid for at, rid in dispatched if at >= killed_at}
    first_after = min(r.at for r in receiver.received if r.request_id in after_kill)
    gap = first_after - killed_at
    print(
        f"\n[Sentinel failover] {len(ids)} dispatched ({len(refused)} refused with a clear error); "
        f"Sentinels named the new primary {failover_at - killed_at:.1f}s after the kill; "
        f"first delivery of an event dispatched after the kill: {gap:.1f}s after it"
    )
    check_and_record(
        "Redis primary SIGKILLed, Sentinel failover",
        runtime,
        receiver,
        ids,
        note=f"first delivery through the new primary {gap:.1f}s after the kill",
    )
    assert {r["status"] for r in rows} == {DeliveryStatus.DELIVERED}
    assert sum(store.status_counts(runtime.engine).values()) == len(ids), "a refused dispatch left rows"
    assert all(isinstance(exc, DispatcherError) and str(exc) for exc in refused)
    assert all(w.process.poll() is None for w in workers), "a worker died in the failover"
    assert not [w.name for w in workers if "quitting" in w.output()], "RQ quit its loop on a Redis error"

"""Worker hosts across a real network (issue 15): three worker hosts as Linux network namespaces,
each running ``python worker.py --concurrency 2``, reaching Redis, PostgreSQL and the partner
through a bridge and a fault proxy on the service host (2 ms each way; resets and stalls on
command), and one host partitioned for 45 s while it holds claims (:mod:`tests.netlab`).

Checked as the fault suite does: every event ends final; each request_id reached the partner,
at least once, and never twice at the same time; the attempt log has one row per attempt.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dispatcher import dispatch, store
from dispatcher.errors import DispatcherError
from dispatcher.store.schema import DELIVERIES
from dispatcher.vocabulary import DeliveryStatus
from tests.conftest import ROOT, wait_for
from tests.e2e.test_faults import EVENT, KEY, check_and_record, example, final, wait_final
from tests.netlab import FaultProxy, NetLab, unavailable
from tests.servers import Answer, ScriptedReceiver

PARTITION_SECONDS = 45
REASON = unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def through(url: str, proxy: FaultProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    return make_url(url).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)


def claims_of(engine: sa.Engine, worker_prefix: str) -> set[str]:
    query = sa.select(DELIVERIES.c.request_id).where(
        DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT, DELIVERIES.c.worker.like(f"{worker_prefix}.%")
    )
    with engine.connect() as conn:
        return set(conn.scalars(query))


def test_a_host_partitioned_for_45s_is_recovered_from_and_rejoins(
    pg_url, redis_url, make_runtime, write_config, tmp_path: Path
) -> None:
    with NetLab(3, tmp_path / "lab") as lab:
        receiver = ScriptedReceiver(host=lab.service_ip)
        receiver.default = Answer(delay=0.3)  # a partner that takes its time: claims stay held
        redis_proxy = FaultProxy(lab.service_ip, ("127.0.0.1", make_url(redis_url).port or 6379))
        pg_proxy = FaultProxy(lab.service_ip, ("127.0.0.1", make_url(pg_url).port or 5432))
        try:
            _partition_under_load(
                lab, receiver, redis_proxy, pg_proxy, make_runtime, write_config, pg_url, redis_url
            )
        finally:
            lab.close()  # the hosts first, so no worker reconnects through a proxy being closed
            redis_proxy.close()  # then every connection it made: no blocked dequeue outlives the test
            pg_proxy.close()
            receiver.close()


def _partition_under_load(
    lab, receiver, redis_proxy, pg_proxy, make_runtime, write_config, pg_url, redis_url
):
    partner = {"name": "partner-a", "url": receiver.url, "key": KEY}
    networks = {"allow_networks": [lab.network, "127.0.0.0/8"]}
    runtime = make_runtime(endpoints=[partner], database_url=pg_url, **networks)
    config = write_config(
        endpoints=[partner],
        redis_url=f"redis://{redis_proxy.host}:{redis_proxy.port}{urlsplit(redis_url).path}",
        database_url=through(pg_url, pg_proxy),
        **networks,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(DISPATCHER_CONFIG=str(config), PYTHONUNBUFFERED="1")
    logs = {host: lab.directory / f"{host}.out" for host in lab.hosts}
    for host in lab.hosts:
        lab.run(
            host,
            [sys.executable, str(ROOT / "worker.py"), "--concurrency", "2", "--name", host],
            env,
            logs[host],
        )

    dispatched: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                dispatched.extend(dispatch(EVENT, example()))
            except DispatcherError:
                pass
            stop.wait(0.05)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    cut, healed_at = lab.hosts[0], 0.0
    try:
        wait_for(
            lambda: {r.peer for r in receiver.received} >= {lab.host_ip(h) for h in lab.hosts}, timeout=60
        )
        cut_connections = redis_proxy.reset()  # every Redis connection of every host reset at once
        time.sleep(2)
        pg_proxy.stall()  # the database stops answering for 3 s
        time.sleep(3)
        pg_proxy.resume()
        time.sleep(3)
        wait_for(lambda: claims_of(runtime.engine, cut), timeout=60, message=f"{cut} to hold a claim")
        lab.partition(cut)
        partitioned_at = time.time()
        held = claims_of(runtime.engine, cut)
        while not all(final(runtime, rid) for rid in held):
            if time.time() - partitioned_at > PARTITION_SECONDS:
                left = {rid: store.get_delivery(runtime.engine, rid) for rid in held}
                pytest.fail(
                    f"the claims {cut} held were not recovered while it was cut off: "
                    + repr({rid: (d["status"], d["worker"], d["attempts"]) for rid, d in left.items() if d})
                )
            time.sleep(0.5)
        recovered_after = time.time() - partitioned_at
        time.sleep(max(0.0, PARTITION_SECONDS - recovered_after))
        lab.heal(cut)
        healed_at = time.time()
        wait_for(
            lambda: any(r.peer == lab.host_ip(cut) and r.at > healed_at for r in receiver.received),
            timeout=90,
            message=f"{cut} to deliver again after the partition",
        )
        rejoined_after = time.time() - healed_at
    finally:
        stop.set()
        loader.join(timeout=30)

    rows = wait_final(runtime, dispatched, timeout=180)
    print(
        f"\n[network] {len(dispatched)} dispatched over 3 hosts; {cut_connections} Redis connections reset; "
        f"{len(held)} claims held by {cut} when partitioned, final {recovered_after:.1f}s later; "
        f"{cut} delivering again {rejoined_after:.1f}s after the heal"
    )
    stats = check_and_record(
        f"worker host partitioned {PARTITION_SECONDS}s holding {len(held)} claims",
        runtime,
        receiver,
        dispatched,
        ok_index=lambda rid: len(receiver.for_request(rid)) - 1,  # at-least-once: the last answer counts
        note=f"recovered {recovered_after:.0f}s after the cut; rejoined {rejoined_after:.0f}s after the heal",
    )
    assert {r["status"] for r in rows} == {DeliveryStatus.DELIVERED}
    again = [rid for rid in dispatched if len(receiver.for_request(rid)) > 1]
    assert set(again) <= held, "only a partitioned host's claims may reach the partner twice"
    assert stats["lost"] == 0
    for host, log in logs.items():
        text = log.read_text(errors="replace")
        assert "worker died; replacing it" not in text and "quitting" not in text, (
            f"{host} restarted a worker"
        )

"""One alerts pass (dispatcher.alerts.run) on the real Redis and SQLite with real channels on
loopback: an endpoint disabled reaches both channels once; the lock keeps a second process out
and is given back; the check raises workers.none_alive once (a worker's pass never does, and
resolves it), counting a lease-less silence from when it was first seen; and without Redis the
check still runs, unlocked."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from dispatcher import store
from dispatcher.alerts import lock
from dispatcher.alerts.run import LEASELESS_KEY, leaseless_since, run_once
from dispatcher.store import alerts as stored
from dispatcher.store import leases
from dispatcher.times import utcnow
from tests.alerts.servers import AlertReceiver, MailServer, alerts_config, free_port
from tests.alerts.servers import alert_certs_fixture as alert_certs_fixture
from tests.alerts.servers import alert_receiver_fixture as alert_receiver_fixture
from tests.alerts.servers import mail_server_fixture as mail_server_fixture


@pytest.fixture
def config(alert_receiver: AlertReceiver, mail_server: MailServer) -> dict:
    return alerts_config(alert_receiver, mail_server)


def kinds_received(alert_receiver: AlertReceiver, mail_server: MailServer) -> tuple[list[str], list[str]]:
    hooks = [h.body["type"] for h in alert_receiver.hooks if h.verified]
    mails = [m.message["Subject"].split("] ")[1].split(":")[0] for m in mail_server.mails]
    return hooks, mails


def test_nothing_runs_without_alerts_configured(make_runtime, redis_client) -> None:
    runtime = make_runtime()
    assert run_once(runtime, include_none_alive=True) is None
    assert redis_client.exists(lock.KEY) == 0


def test_a_disabled_endpoint_reaches_both_channels_once(
    make_runtime, config, alert_receiver, mail_server, redis_client
) -> None:
    runtime = make_runtime(alerts=config)
    leases.renew(runtime.engine, "w1", utcnow(), timedelta(seconds=30))
    store.disable(runtime.engine, "pharmacy", "HTTP 410 Gone")
    report = run_once(runtime)
    assert report is not None and report.locked
    assert report.counts() == {"raised": 0, "resolved": 0, "routed": 2, "sent": 2, "retrying": 0, "failed": 0}
    assert redis_client.exists(lock.KEY) == 0  # given back
    again = run_once(runtime)
    assert again is not None and not again.changed()
    assert kinds_received(alert_receiver, mail_server) == (["endpoint.disabled"], ["endpoint.disabled"])


def test_a_pass_waits_while_another_process_holds_the_lock(
    make_runtime, config, redis_client, alert_receiver
) -> None:
    runtime = make_runtime(alerts=config)
    store.disable(runtime.engine, "pharmacy", "HTTP 410 Gone")
    token = lock.acquire(redis_client)
    assert token is not None
    assert run_once(runtime) is None and run_once(runtime, include_none_alive=True) is None
    assert alert_receiver.hooks == [] and stored.due_sends(runtime.engine, utcnow()) == []
    assert redis_client.get(lock.KEY) == token.encode()  # not taken from its holder
    lock.release(redis_client, token)
    assert run_once(runtime).counts()["sent"] == 2


def test_the_check_raises_none_alive_once_and_a_worker_resolves_it(
    make_runtime, config, alert_receiver, mail_server
) -> None:
    runtime = make_runtime(alerts=config)
    now = utcnow()
    leases.renew(runtime.engine, "w1", now - timedelta(minutes=2), timedelta(seconds=30))
    assert run_once(runtime, now).raised == []  # a worker's pass never raises it
    first = run_once(runtime, now, include_none_alive=True)
    second = run_once(runtime, now + timedelta(seconds=15), include_none_alive=True)
    assert first.raised == ["workers.none_alive:after:0"] and first.counts()["sent"] == 2
    assert not second.changed()
    assert kinds_received(alert_receiver, mail_server) == (["workers.none_alive"], ["workers.none_alive"])
    leases.renew(runtime.engine, "w2", now + timedelta(seconds=20), timedelta(seconds=30))
    assert run_once(runtime, now + timedelta(seconds=20)).resolved == ["workers.none_alive:after:0"]


def test_with_no_lease_the_check_waits_a_minute_from_when_it_first_saw_none(
    make_runtime, config, redis_client
) -> None:
    runtime = make_runtime(alerts=config)
    now = utcnow()
    assert run_once(runtime, now, include_none_alive=True).raised == []
    assert run_once(runtime, now + timedelta(seconds=59), include_none_alive=True).raised == []
    assert run_once(runtime, now + timedelta(seconds=60), include_none_alive=True).raised == [
        "workers.none_alive:after:0"
    ]
    leases.renew(runtime.engine, "w1", now + timedelta(seconds=70), timedelta(seconds=30))
    run_once(runtime, now + timedelta(seconds=70), include_none_alive=True)
    assert redis_client.exists(LEASELESS_KEY) == 0


def test_leaseless_since_is_kept_until_a_lease_is_seen(redis_client) -> None:
    now = utcnow().replace(microsecond=0)
    assert leaseless_since(redis_client, False, now) == now
    assert leaseless_since(redis_client, False, now + timedelta(minutes=5)) == now
    assert 0 < redis_client.ttl(LEASELESS_KEY) <= 86400
    assert leaseless_since(redis_client, True, now) is None
    assert leaseless_since(redis_client, False, now + timedelta(minutes=9)) == now + timedelta(minutes=9)


def test_without_redis_the_check_runs_unlocked_and_a_worker_pass_fails(
    make_runtime, config, alert_receiver
) -> None:
    runtime = make_runtime(alerts=config, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(redis.ConnectionError):
        run_once(runtime)
    report = run_once(runtime, include_none_alive=True)
    assert report is not None and report.locked is False
    assert report.raised == ["workers.none_alive:after:0"]  # no lease, no Redis to count from: at once
    assert report.counts()["sent"] == 2

"""The alerts pass on the housekeeping thread (Housekeeping.maybe_alert), with the real Redis,
SQLite and channels on loopback: run when due, not again within ALERTS_EVERY_SECONDS, nothing
when alerts are not configured, and a failing pass logged, never raised; on the running thread
an endpoint disabled reaches the people on call while the heartbeat keeps beating."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from dispatcher import store
from dispatcher.alerts import lock
from dispatcher.logs import process_logger
from dispatcher.store import leases
from dispatcher.times import utcnow
from dispatcher.worker import housekeeping as housekeeping_module
from dispatcher.worker.liveness import alive_key
from tests.alerts.servers import alert_certs_fixture as alert_certs_fixture
from tests.alerts.servers import alert_receiver_fixture as alert_receiver_fixture
from tests.alerts.servers import alerts_config, free_port
from tests.alerts.servers import mail_server_fixture as mail_server_fixture
from tests.conftest import wait_for


def test_the_pass_runs_when_due_and_not_again_within_its_interval(
    make_runtime, alert_receiver, mail_server
) -> None:
    runtime = make_runtime(alerts=alerts_config(alert_receiver, mail_server))
    leases.renew(runtime.engine, "w", utcnow(), timedelta(seconds=30))
    housekeeping = housekeeping_module.Housekeeping(runtime)
    store.disable(runtime.engine, "pharmacy", "HTTP 410 Gone")
    housekeeping.maybe_alert()
    assert [h.body["type"] for h in alert_receiver.hooks] == ["endpoint.disabled"]
    store.enable(runtime.engine, "pharmacy")
    housekeeping.maybe_alert()  # within ALERTS_EVERY_SECONDS of the last: not now
    assert len(alert_receiver.hooks) == 1
    housekeeping.alerted_at = (housekeeping.alerted_at or 0) - housekeeping_module.ALERTS_EVERY_SECONDS
    housekeeping.maybe_alert()
    assert [h.body["type"] for h in alert_receiver.hooks] == ["endpoint.disabled", "endpoint.recovered"]


def test_nothing_runs_without_alerts(make_runtime, redis_client) -> None:
    runtime = make_runtime()
    housekeeping = housekeeping_module.Housekeeping(runtime)
    housekeeping.maybe_alert()
    assert housekeeping.alerted_at is None and redis_client.exists(lock.KEY) == 0


def test_a_failing_pass_is_logged_and_tried_at_the_next_interval(
    make_runtime, alert_receiver, mail_server, caplog
) -> None:
    config = alerts_config(alert_receiver, mail_server)
    runtime = make_runtime(alerts=config, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    housekeeping = housekeeping_module.Housekeeping(runtime)
    logger = process_logger()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            housekeeping.maybe_alert()  # Redis away: no exception
    finally:
        logger.removeHandler(caplog.handler)
    assert housekeeping.alerted_at is not None
    (line,) = [r.getMessage() for r in caplog.records if "alerts pass failed" in r.getMessage()]
    assert "ConnectionError" in line


def test_on_the_running_thread_an_alert_goes_out_and_the_heartbeat_beats(
    make_runtime, alert_receiver, mail_server, redis_client, monkeypatch
) -> None:
    runtime = make_runtime(alerts=alerts_config(alert_receiver, mail_server))
    runtime.worker_name = "alerting-worker"
    monkeypatch.setattr(housekeeping_module, "HEARTBEAT_SECONDS", 0.1)
    inside, release = threading.Event(), threading.Event()
    real_send = housekeeping_module.run_alerts

    def slow_pass(*args, **kwargs):
        inside.set()
        release.wait(10)  # a channel that takes its time to answer
        return real_send(*args, **kwargs)

    monkeypatch.setattr(housekeeping_module, "run_alerts", slow_pass)
    store.disable(runtime.engine, "pharmacy", "HTTP 410 Gone")
    housekeeping = housekeeping_module.Housekeeping(runtime, reconcile_every=3600)
    heartbeat = housekeeping_module.Heartbeat(runtime)
    housekeeping.start()
    heartbeat.start()
    try:
        assert inside.wait(5)
        redis_client.delete(alive_key("alerting-worker"))
        wait_for(
            lambda: redis_client.exists(alive_key("alerting-worker")),
            3,
            message="a heartbeat during the pass",
        )
        release.set()
        wait_for(lambda: len(mail_server.mails) == 1 and alert_receiver.hooks, 10, message="the alert")
    finally:
        release.set()
        heartbeat.stop()
        housekeeping.stop()

"""The supervisor of ``worker --concurrency N`` (dispatcher.worker.supervisor), run in this
process over real worker processes, the real Redis and SQLite: it starts N children named
``base.slot.generation`` with the options given, replaces a child that dies under a new name,
passes a stop on to every child and says whether they all stopped cleanly."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
import redis
from rq import Worker

from dispatcher.worker import supervisor
from dispatcher.worker.supervisor import Supervisor
from tests.conftest import REDIS_URL

ENDPOINT = {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "k-sup-1"}


@pytest.fixture
def configured(write_config, monkeypatch) -> None:
    """Children read this configuration (they inherit the environment); the signal handlers
    run() installs are put back afterwards."""
    monkeypatch.setenv("DISPATCHER_CONFIG", str(write_config(endpoints=[ENDPOINT])))
    monkeypatch.delenv("DISPATCHER_REDIS_URL", raising=False)
    monkeypatch.delenv("DISPATCHER_DATABASE_URL", raising=False)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def registered(prefix: str) -> dict[str, int]:
    """RQ workers whose name starts with ``prefix``: name -> pid."""
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        return {w.name: w.pid for w in Worker.all(connection=connection) if w.name.startswith(prefix)}
    finally:
        connection.close()


def until(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the supervisor's children did not get there")
        time.sleep(0.1)


def test_burst_children_are_named_by_slot_and_generation_and_all_finish(configured, redis_url) -> None:
    sup = Supervisor(2, "sup-burst", burst=True, threads=3)
    assert sup.run() == 0
    assert sorted(child.name for child in sup.children.values()) == ["sup-burst.0.1", "sup-burst.1.2"]
    assert sup.generation == 2  # none replaced: a burst child that ends with 0 is done
    for child in sup.children.values():
        assert child.process.returncode == 0
        assert child.process.args[-6:] == ["worker", "--name", child.name, "--burst", "--threads", "3"]


def test_a_child_that_dies_is_replaced_under_a_new_name_and_a_stop_reaches_every_child(
    configured, redis_url
) -> None:
    sup = Supervisor(1, "sup-replace")
    problems: list[BaseException] = []

    def operate() -> None:
        try:
            until(lambda: "sup-replace.0.1" in registered("sup-replace."))
            os.kill(registered("sup-replace.")["sup-replace.0.1"], signal.SIGKILL)
            until(lambda: "sup-replace.0.2" in registered("sup-replace."))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            problems.append(exc)
        finally:
            sup._request_stop(signal.SIGTERM, None)

    operator = threading.Thread(target=operate)
    operator.start()
    code = sup.run()
    operator.join(10)
    assert problems == []
    assert code == 0  # the replacement stopped cleanly on the SIGTERM passed on
    assert [child.name for child in sup.children.values()] == ["sup-replace.0.2"]
    assert sup.restart_delay == 2 * supervisor.RESTART_DELAY_SECONDS  # it died young: backed off
    until(lambda: "sup-replace.0.2" not in registered("sup-replace."), timeout=30)  # deregistered


def test_the_default_base_name_is_host_and_pid() -> None:
    assert supervisor.default_base_name() == f"{socket.gethostname()}.{os.getpid()}"


def test_verbose_reaches_every_child_which_prints_on_the_supervisors_terminal(
    configured, redis_url, capfd
) -> None:
    quiet = Supervisor(1, "sup-quiet", burst=True)
    assert quiet.run() == 0
    said = capfd.readouterr().out
    assert "worker started: sup-quiet.0.1 on send-webhook-request" in said and "Listening on" not in said
    loud = Supervisor(1, "sup-loud", burst=True, verbose=True)
    assert loud.run() == 0
    assert loud.children[0].process.args[-4:] == ["--name", "sup-loud.0.1", "--burst", "--verbose"]
    said = capfd.readouterr().out
    assert "worker started: sup-loud.0.1 on send-webhook-request" in said and "Listening on" in said

"""A real Prometheus scraping a real worker: ``python worker.py`` with its metrics port, one event
delivered to a receiver on 127.0.0.1, and the ``prometheus`` binary (Debian's package) run with
a configuration of the shipped example's kind -- job ``dispatcher-worker``, the shipped
``deploy/prometheus/alerts.yml`` loaded -- scraping every second. Prometheus stores the delivery
lag of the delivered event, loads every shipped alert, and evaluates each against the worker's
real series without an error and without firing."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from dispatcher import dispatch
from dispatcher.contract import catalogue as events
from dispatcher.ops.redis_server import free_port
from dispatcher.runtime import Runtime
from tests.conftest import WorkerProcess, wait_for
from tests.e2e.test_worker_e2e import endpoint, wait_final
from tests.servers import ScriptedReceiver
from tests.test_prometheus_rules import ALERTS, JOB, RULES

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed (scripts/test installs Debian's prometheus package)",
)


class Prometheus:
    """A running ``prometheus`` on 127.0.0.1 and its HTTP API."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a successful API answer; None while Prometheus does not answer."""
        try:
            answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        except requests.RequestException:
            return None
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    def samples(self, query: str) -> dict[str, float]:
        """Each series' value by its ``event`` label (an instant query)."""
        found = (self.api("query", query=query) or {"result": []})["result"]
        return {item["metric"].get("event", ""): float(item["value"][1]) for item in found}

    def alert_rules(self) -> dict[str, dict[str, Any]]:
        groups = self.api("rules", type="alert") or {"groups": []}
        return {rule["name"]: rule for group in groups["groups"] for rule in group["rules"]}


@contextmanager
def prometheus(tmp_path: Path, metrics_port: int) -> Iterator[Prometheus]:
    """Prometheus scraping 127.0.0.1:``metrics_port`` as job dispatcher-worker every second, with
    the shipped alerts evaluated every second; stopped whatever the test did."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.out"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(shutil.which("prometheus")),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", log)
    try:
        wait_for(
            lambda: process.poll() is not None or ready(server.url),
            timeout=60,
            message=f"prometheus to be ready ({log})",
        )
        assert process.poll() is None, log.read_text(errors="replace")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_prometheus_scrapes_the_delivery_lag_and_evaluates_the_shipped_alerts(
    make_runtime: Callable[..., Runtime],
    write_config: Callable[..., Path],
    start_worker: Callable[..., WorkerProcess],
    receiver: ScriptedReceiver,
    tmp_path: Path,
) -> None:
    metrics_port = free_port()
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(
        write_config(
            endpoints=[endpoint(receiver)],
            metrics={"port": metrics_port, "host": "127.0.0.1", "port_range": 1},
        )
    )
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [request_id])
    assert row["status"] == "delivered"

    with prometheus(tmp_path, metrics_port) as server:
        query = f'dispatcher_delivery_lag_seconds_count{{job="{JOB}",endpoint="partner-a"}}'
        lag = wait_for(
            lambda: (found := server.samples(query)).get("order_changed", 0) >= 1 and found,
            timeout=60,
            message=f"Prometheus to store {query} >= 1 (its log: {server.log})",
        )
        # one delivery: one observation; the other events' series were made at 0 when it started
        assert lag == {name: 1.0 if name == "order_changed" else 0.0 for name in events.CATALOGUE}
        first = server.samples(
            f'dispatcher_first_attempt_lag_seconds_count{{job="{JOB}",endpoint="partner-a"}}'
        )
        assert first["order_changed"] == 1

        rules = server.alert_rules()
        assert set(rules) == ALERTS, f"Prometheus loaded {sorted(rules)} from {RULES}"
        # each rule evaluated against the worker's series: no error, nothing firing; the worker
        # scraped under the job the rules name makes DispatcherNoWorkerAlive inactive
        expected = {name: ("ok", "inactive", "") for name in ALERTS}
        seen: dict[str, tuple[str, str, str]] = {}

        def settled() -> bool:
            seen.clear()
            seen.update(
                (name, (r["health"], r["state"], r.get("lastError", "")))
                for name, r in server.alert_rules().items()
            )
            return seen == expected

        deadline = time.monotonic() + 30
        wait_for(lambda: settled() or time.monotonic() > deadline, timeout=60, message="the rules' state")
        assert seen == expected

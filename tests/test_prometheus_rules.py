"""The Prometheus files in ``deploy/prometheus/``: the alert rules pass ``promtool check rules``
and their unit tests (``promtool test rules``), the example scrape config passes ``promtool check
config``, and what the files say agrees with the code and the docs -- the worker's port range,
the job name the rules expect, a runbook section for every alert, no label but the dispatcher's
names (never PHI)."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from dispatcher.worker import metrics
from tests.conftest import ROOT
from tests.docs.test_links import anchors

FOLDER = ROOT / "deploy" / "prometheus"
RULES = FOLDER / "alerts.yml"
RULE_TESTS = FOLDER / "alerts.test.yml"
CONFIG = FOLDER / "prometheus.yml"
OBSERVABILITY = ROOT / "docs" / "observability.md"
JOB = "dispatcher-worker"
ALERTS = {
    "DispatcherQueueStalled",
    "DispatcherEndpointFailing",
    "DispatcherNoWorkerAlive",
    "DispatcherDeliveryLagHigh",
    "DispatcherRedisDown",
}
SAFE_LABELS = {"endpoint", "event", "queue", "job", "instance", "le"}
"""The labels a rule may group by or print: the dispatcher's names and Prometheus' own."""

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (scripts/test installs Debian's prometheus package)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def alert_rules() -> list[dict[str, Any]]:
    (group,) = yaml.safe_load(RULES.read_text())["groups"]
    assert group["name"] == "dispatcher"
    return [rule for rule in group["rules"] if "alert" in rule]


@needs_promtool
def test_promtool_check_rules_accepts_the_alerts() -> None:
    result = promtool("check", "rules", str(RULES.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@needs_promtool
def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_config_accepts_the_example_scrape_config() -> None:
    result = promtool("check", "config", str(CONFIG.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid prometheus config file syntax" in result.stdout


def test_the_group_has_every_alert_each_with_severity_summary_description_and_runbook() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == ALERTS
    sections = anchors(OBSERVABILITY)
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"] == f"docs/observability.md#{name.lower()}", name
        assert name.lower() in sections, f"docs/observability.md has no section {name}"


def test_rules_group_and_print_only_the_dispatchers_names() -> None:
    """A label value reaches whoever is paged: endpoint, event and queue names, never PHI."""
    for rule in alert_rules():
        grouped = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", rule["expr"])
        used = {label.strip() for labels in grouped for label in labels.split(",") if label.strip()}
        printed = set(re.findall(r"\$labels\.(\w+)", " ".join(rule["annotations"].values())))
        assert used | printed <= SAFE_LABELS, rule["alert"]


def test_every_alert_is_proven_firing_and_quiet_by_the_unit_tests() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    cases = [case for test in tests["tests"] for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert fired == ALERTS and quiet == ALERTS


def test_the_example_scrapes_every_port_a_worker_may_take_under_the_rules_job_name() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == [RULES.name]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB and job["scrape_interval"] == "15s"
    (static,) = job["static_configs"]
    ports = sorted(int(target.rpartition(":")[2]) for target in static["targets"])
    first = metrics.DEFAULT_PORT
    assert ports == list(range(first, first + metrics.DEFAULT_PORT_SEARCH))
    (no_worker,) = [rule for rule in alert_rules() if rule["alert"] == "DispatcherNoWorkerAlive"]
    assert f'job="{JOB}"' in no_worker["expr"]


def test_the_docs_index_links_the_observability_page() -> None:
    assert "(observability.md)" in (ROOT / "docs" / "README.md").read_text()
    assert OBSERVABILITY.is_file()

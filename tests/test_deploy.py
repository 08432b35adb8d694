"""The worker host's systemd unit (``deploy/dispatcher-worker.service``): valid for systemd, and
what it runs is what this checkout understands."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "dispatcher-worker.service"
INSTALLED_AT = "/opt/dispatcher"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            settings.setdefault(name, []).append(value)
    return settings


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing_wrong(tmp_path: Path) -> None:
    """The unit as installed on this checkout (its paths pointed here): systemd-analyze prints a
    line naming the file for every setting it cannot parse, and exits 1 on a fatal one."""
    text = UNIT.read_text().replace(f"{INSTALLED_AT}/.venv/bin/python", sys.executable)
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(INSTALLED_AT, str(ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


def test_the_unit_runs_this_checkouts_worker_with_its_config() -> None:
    settings = unit_settings()
    command = shlex.split(settings["ExecStart"][0])
    assert command[:2] == [f"{INSTALLED_AT}/.venv/bin/python", f"{INSTALLED_AT}/worker.py"]
    assert settings["WorkingDirectory"] == [INSTALLED_AT]
    assert "DISPATCHER_CONFIG=/etc/dispatcher/config.yaml" in settings["Environment"]
    assert settings["KillSignal"] == ["SIGTERM"] and settings["Restart"] == ["always"]
    options = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), *command[2:], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert options.returncode == 0, options.stderr
    assert "--concurrency" in options.stdout


ALERTS_SERVICE = ROOT / "deploy" / "dispatcher-alerts-check.service"
ALERTS_TIMER = ROOT / "deploy" / "dispatcher-alerts-check.timer"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_alerts_check_units_verify(tmp_path: Path) -> None:
    for unit in (ALERTS_SERVICE, ALERTS_TIMER):
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED_AT, str(ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / ALERTS_TIMER.name), str(tmp_path / ALERTS_SERVICE.name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "alerts-check" in line]
    assert complaints == [], result.stdout + result.stderr


def test_the_alerts_check_unit_runs_a_command_this_checkout_has() -> None:
    lines = dict(
        line.split("=", 1)
        for line in ALERTS_SERVICE.read_text().splitlines()
        if "=" in line and line[0] not in "#["
    )
    command = shlex.split(lines["ExecStart"])
    assert command[0] == f"{INSTALLED_AT}/.venv/bin/dispatcher" and command[1:] == ["alerts", "check"]
    assert (
        lines["Type"] == "oneshot" and lines["Environment"] == "DISPATCHER_CONFIG=/etc/dispatcher/config.yaml"
    )
    options = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dispatcher"), *command[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert options.returncode == 0 and "workers.none_alive" in options.stdout, options.stderr
    timer = ALERTS_TIMER.read_text()
    assert "OnUnitActiveSec=1min" in timer and "WantedBy=timers.target" in timer

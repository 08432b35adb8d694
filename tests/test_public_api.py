"""The doors partners and operators script against stay where they are."""

from __future__ import annotations

import subprocess
import sys

import pytest

import dispatcher
from tests.conftest import ROOT

PUBLIC = [
    "CATALOGUE",
    "EVENT_NAMES",
    "ConfigError",
    "DeliveryNotFound",
    "DispatcherError",
    "InvalidEventData",
    "PayloadTooLarge",
    "StoreUnavailable",
    "UnknownEndpoint",
    "UnknownEvent",
    "dispatch",
    "dispatch_in_transaction",
    "dispatch_many",
]


def test_the_public_api_is_pinned() -> None:
    assert sorted(dispatcher.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(dispatcher, name) is not None


def test_queued_jobs_keep_finding_their_function() -> None:
    """Every RQ job already queued or scheduled names ``dispatcher.jobs.deliver``."""
    from dispatcher.jobs import deliver
    from dispatcher.queue import JOB_FUNCTION
    from dispatcher.worker.batch import deliver as batch_deliver

    assert JOB_FUNCTION == "dispatcher.jobs.deliver" and deliver is batch_deliver


def test_the_readme_outbox_import_keeps_working() -> None:
    from dispatcher.intake.outbox import dispatch_in_transaction as in_the_room
    from dispatcher.outbox import dispatch_in_transaction

    assert dispatch_in_transaction is in_the_room is dispatcher.dispatch_in_transaction


def test_intake_takes_one_request_from_every_way_in() -> None:
    import dispatcher.intake
    from dispatcher.intake.request import DispatchRequest

    assert dispatcher.intake.__all__ == ["DispatchRequest"]
    assert dispatcher.intake.DispatchRequest is DispatchRequest


def _fresh(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


HEAVY = ("sqlalchemy", "redis", "rq", "requests", "prometheus_client", "pydantic", "rich")


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    out = _fresh(
        "import contextlib, io, sys; from dispatcher.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        f"print('loaded:', ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert out.strip() == "loaded:"


@pytest.mark.parametrize(
    "module",
    ["resend", "prune", "log", "log_reports", "endpoints", "info", "worker", "simulate", "demo", "config"],
)
def test_each_command_module_imports_on_its_own(module: str) -> None:
    """No import cycle: a command module imported first, in a fresh interpreter, works."""
    _fresh(f"import dispatcher.cli.{module}")

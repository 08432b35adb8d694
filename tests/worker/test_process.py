"""The worker process: RQ's loop, started and stopped cleanly, and quiet unless verbose."""

from __future__ import annotations

import logging

import pytest

from dispatcher.worker import process as worker_module


def test_a_sigterm_before_rq_listens_stops_the_loop_before_its_first_job(make_runtime) -> None:
    """RQ registers the worker, forks its scheduler, and only then installs its signal handlers;
    a SIGTERM in between must not kill the worker with its registration left behind."""
    runtime = make_runtime(endpoints=[])
    worker = worker_module.WebhookWorker([runtime.queue], connection=runtime.redis, name="early-stop")
    assert worker._stop_requested is False
    worker_module._stop_before_rq_listens(worker, runtime)(15, None)
    assert worker._stop_requested is True and runtime.stop_requested is True
    assert worker.work(burst=True) is False  # the loop stops before dequeuing anything
    assert "early-stop" not in {w.name for w in worker_module.SimpleWorker.all(connection=runtime.redis)}


@pytest.fixture
def rq_loggers():
    """RQ's loggers put back as they were (the worker sets their level)."""
    loggers = [logging.getLogger(name) for name in ("rq.worker", "rq.job")]
    saved = [(logger.level, list(logger.handlers), logger.propagate) for logger in loggers]
    yield
    for logger, (level, handlers, propagate) in zip(loggers, saved, strict=True):
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.mark.parametrize("verbose", [False, True])
def test_rqs_lines_about_each_job_only_when_verbose(make_runtime, caplog, rq_loggers, verbose: bool) -> None:
    runtime = make_runtime(endpoints=[])
    worker = worker_module.WebhookWorker([runtime.queue], connection=runtime.redis, name=f"quiet-{verbose}")
    logging.getLogger("rq.worker").addHandler(caplog.handler)  # RQ stops its loggers' propagation
    with caplog.at_level(logging.DEBUG):
        worker.work(burst=True, logging_level=worker_module.rq_logging_level(verbose))
    said = caplog.text
    assert ("Listening on" in said) is verbose and ("done, quitting" in said) is verbose
    assert worker_module.rq_logging_level(verbose) == ("INFO" if verbose else "WARNING")


def said_at_start(settings) -> tuple[list[str], str]:
    """The warnings a worker starting with ``settings`` returns, and what its terminal printed."""
    import io

    from dispatcher.logs import setup_terminal

    terminal = io.StringIO()
    setup_terminal(settings.secrets(), terminal)
    try:
        warnings = worker_module.warn_at_start(settings)
    finally:
        setup_terminal([], io.StringIO())
    return warnings, terminal.getvalue()


def test_a_worker_starting_says_what_config_check_warns_about(tmp_path) -> None:
    """An endpoint on loopback without allow_networks, and one on the default key: the worker's
    terminal names both before the first delivery fails."""

    from tests.conftest import settings_from

    settings = settings_from(
        {
            "environment": "development",
            "database_url": f"sqlite:///{tmp_path}/w.db",
            "endpoints": [
                {"name": "local", "url": "http://127.0.0.1:9/hook/ORDER-1", "key": "k-local"},
                {"name": "defaulted", "url": "https://93.184.215.14/hook"},
            ],
        }
    )
    warnings, printed = said_at_start(settings)
    assert any("127.0.0.1 is not allowed (loopback): add it to allow_networks" in w for w in warnings), (
        warnings
    )
    assert any("defaulted" in w and "default key xxx" in w for w in warnings), warnings
    assert len(printed.splitlines()) == len(warnings) and "warning: " in printed
    assert "ORDER-1" not in printed and "k-local" not in printed


def test_a_worker_says_at_start_which_certificate_files_cannot_be_used(tmp_path) -> None:

    from tests.conftest import settings_from

    broken = tmp_path / "clinic.crt"
    broken.write_text("not a certificate")
    settings = settings_from(
        {
            "environment": "development",
            "database_url": f"sqlite:///{tmp_path}/w.db",
            "allow_networks": ["127.0.0.0/8"],
            "endpoints": [
                {
                    "name": "pharmacy",
                    "url": "https://127.0.0.1:9/hooks",
                    "key": "k",
                    "tls_client_cert": {"cert": str(broken)},
                }
            ],
        }
    )
    warnings, printed = said_at_start(settings)
    assert any(w.startswith("endpoint pharmacy: tls_client_cert.cert: ") for w in warnings), warnings
    assert "tls_client_cert.cert" in printed


def test_a_stop_that_reaches_the_forked_scheduler_before_its_own_handler_ends_it(tmp_path) -> None:
    """The worker's SIGTERM handler only sets flags. A child it forks (RQ's scheduler) that gets
    SIGTERM before installing a handler of its own must end, not loop on with the worker waiting
    for it: the child here never installs one (the gap held open), and the parent stops it."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from dispatcher.worker import process
        process._worker_pid = os.getpid()
        signal.signal(signal.SIGTERM, lambda *_: None)  # the worker's handler: flags only
        os.register_at_fork(after_in_child=process._die_with_parent)
        ready, told = os.pipe()
        child = os.fork()
        if child == 0:
            os.write(told, b"x")  # forked and running: where RQ's scheduler would set its handler
            time.sleep(30)  # ... which it never does here
            os._exit(3)
        os.read(ready, 1)
        os.kill(child, signal.SIGTERM)
        started = time.monotonic()
        _, status = os.waitpid(child, 0)
        print(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, time.monotonic() - started < 20)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "True"], done.stderr

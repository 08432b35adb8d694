"""The worker process: RQ's loop, started and stopped cleanly."""

from __future__ import annotations

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

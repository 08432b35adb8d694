"""The per-process context (dispatcher.runtime), against the real Redis and SQLite: each
connection is made, and its library imported, on first use and then shared; closing releases
only what was made; the claims held are kept under a lock; one masker per endpoint; and the
process's runtime is built from the configuration once, or installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dispatcher import runtime as runtime_module
from dispatcher.runtime import Runtime, get_runtime, set_runtime
from tests.conftest import settings_dict, settings_from

CONNECTIONS = ("engine", "redis", "queue", "http", "senders", "disabled", "keyring")


def made(runtime: Runtime) -> set[str]:
    return {name for name in CONNECTIONS if name in runtime.__dict__}


def test_nothing_is_connected_until_asked_and_then_shared(make_runtime) -> None:
    runtime = make_runtime(endpoints=[])
    assert made(runtime) == set()
    engine = runtime.engine
    assert made(runtime) == {"engine", "keyring"} and runtime.engine is engine
    assert runtime.redis.ping() is True and runtime.redis is runtime.redis
    assert runtime.queue.name == "send-webhook-request" and runtime.queue.connection is runtime.redis
    assert runtime.disabled.get() == {} and runtime.disabled.engine is engine
    assert made(runtime) == {"engine", "keyring", "redis", "queue", "disabled"}


def test_reading_the_database_loads_no_redis_rq_or_http_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from dispatcher.config import parse_settings\n"
        "from dispatcher.runtime import Runtime\n"
        f"runtime = Runtime(parse_settings({{'database_url': 'sqlite:///{tmp_path / 'lazy.db'}'}}, env={{}}))\n"
        "print(sorted(m for m in ('redis', 'rq', 'requests', 'sqlalchemy') if m in sys.modules))\n"
        "runtime.engine.connect().close()\n"
        "print(sorted(m for m in ('redis', 'rq', 'requests', 'sqlalchemy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["[]", "['sqlalchemy']"]


@pytest.mark.parametrize("otlp", [None, "http://127.0.0.1:9"])
def test_telemetry_off_makes_no_tracer_exporter_or_thread(
    tmp_path: Path, redis_url: str, otlp: str | None
) -> None:
    """Off costs nothing: a process that dispatches with no collector named makes no tracer,
    exporter or export thread (and one that names a collector does). redis-py imports
    OpenTelemetry's API on its own when it is installed; the SDK's tracing and the exporter are
    ours alone."""
    raw = settings_dict(
        redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'off.db'}", tmp_path=tmp_path
    )
    raw["endpoints"] = [{"name": "partner", "url": "http://127.0.0.1:9/hook"}]
    if otlp:
        raw["telemetry"] = {"otlp_endpoint": otlp}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    code = (
        "import sys\n"
        "from dispatcher import dispatch\n"
        "from dispatcher.contract import catalogue\n"
        "dispatch('order_changed', catalogue.CATALOGUE['order_changed'].example())\n"
        "import threading\n"
        "ours = ('opentelemetry.sdk.trace', 'opentelemetry.exporter.otlp.proto.http.trace_exporter')\n"
        "threads = [t.name for t in threading.enumerate() if 'Otel' in t.name]\n"
        "print(any(m in sys.modules for m in ours), bool(threads))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DISPATCHER_CONFIG": str(config), "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.splitlines()[-1] == f"{otlp is not None} {otlp is not None}"


def test_closing_releases_only_what_was_made(tmp_path: Path) -> None:
    raw = settings_dict(redis_url="redis://127.0.0.1:1/0", database_url="sqlite:///x.db", tmp_path=tmp_path)
    never_used = Runtime(settings_from(raw))
    never_used.close()  # no Redis answers there, and nothing tries it
    assert made(never_used) == set() and not (tmp_path / "x.db").exists()


def test_a_closed_runtimes_connections_are_released(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=[])
    mine = runtime.redis.client_id()
    assert mine in {int(c["id"]) for c in redis_client.client_list()}
    runtime.senders.submit(lambda: None).result()
    runtime.close()
    assert mine not in {int(c["id"]) for c in redis_client.client_list()}  # the server saw it go
    with pytest.raises(RuntimeError):
        runtime.senders.submit(lambda: None)  # the sender threads are shut down


def test_the_claims_held_are_a_copy_under_the_lock(make_runtime) -> None:
    runtime = make_runtime(endpoints=[])
    runtime.hold(["a", "b"])
    held = runtime.holding_now()
    runtime.unhold(["a", "c"])
    assert held == {"a", "b"} and runtime.holding_now() == {"b"}


def test_one_masker_per_endpoint_masks_only_its_secrets(make_runtime) -> None:
    runtime = make_runtime(
        endpoints=[
            {"name": "partner-a", "url": "http://127.0.0.1:9/a", "key": "key-of-partner-a"},
            {"name": "partner-b", "url": "http://127.0.0.1:9/b", "key": "key-of-partner-b"},
        ]
    )
    a, b = runtime.settings.endpoints
    masker = runtime.masker_for(a)
    assert runtime.masker_for(a) is masker and runtime.masker_for(b) is not masker
    assert "key-of-partner-a" not in masker.mask("echo key-of-partner-a")
    assert masker.mask("echo key-of-partner-b") == "echo key-of-partner-b"  # not this partner's to hide
    everything = runtime.masker.mask("key-of-partner-a key-of-partner-b")
    assert "key-of-partner" not in everything


def test_the_spool_is_beside_the_process_log(make_runtime, tmp_path: Path) -> None:
    runtime = make_runtime(endpoints=[])
    assert runtime.spool_dir == str(tmp_path / "logs" / "spool")


def test_the_process_runtime_is_built_once_from_the_configuration(
    redis_url: str, sqlite_url: str, tmp_path: Path, monkeypatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(settings_dict(redis_url=redis_url, database_url=sqlite_url, tmp_path=tmp_path))
    )
    monkeypatch.setenv("DISPATCHER_CONFIG", str(config))
    monkeypatch.delenv("DISPATCHER_REDIS_URL", raising=False)
    monkeypatch.delenv("DISPATCHER_DATABASE_URL", raising=False)
    previous, first = set_runtime(None), None
    try:
        first = get_runtime()
        assert get_runtime() is first and runtime_module._current is first
        assert (first.settings.redis_url, first.settings.database_url) == (redis_url, sqlite_url)
        installed = Runtime(first.settings, worker_name="installed")
        assert set_runtime(installed) is first and get_runtime() is installed
    finally:
        set_runtime(previous)
        if first is not None:
            first.close()


# --- the endpoints in the database ----------------------------------------------------------------


def _endpoint(name: str, key: str) -> dict[str, str]:
    return {"name": name, "url": f"http://127.0.0.1:9/{name}", "key": key}


def test_the_file_is_the_truth_until_its_endpoints_are_imported(make_runtime) -> None:
    from dispatcher.store import endpoint_catalog

    runtime = make_runtime(endpoints=[_endpoint("a", "key-of-a-123")])
    assert runtime.refresh_endpoints(force=True) is False  # no catalog yet: nothing to take
    endpoint_catalog.add(runtime.engine, _endpoint("b", "key-of-b-123"))  # a catalog without a
    assert runtime.refresh_endpoints(force=True) is True  # first start's import: the database's
    assert [e.name for e in runtime.settings.endpoints] == ["b"]


def test_a_change_is_taken_once_looked_at_and_its_secrets_masked(make_runtime) -> None:
    from dispatcher.store import endpoint_catalog

    runtime = make_runtime(endpoints=[_endpoint("a", "key-of-a-123")])
    assert runtime.adopt_file_endpoints() is True
    assert runtime.adopt_file_endpoints() is False
    endpoint_catalog.add(runtime.engine, _endpoint("b", "key-of-b-456"))
    runtime._catalog.checked = runtime_module.time.monotonic()  # looked a moment ago
    assert runtime.refresh_endpoints() is False and runtime.settings.endpoint("b") is None
    runtime._catalog.checked = float("-inf")  # a second later
    assert runtime.refresh_endpoints() is True
    assert [e.name for e in runtime.settings.endpoints] == ["a", "b"]
    assert "key-of-b" not in runtime.masker.mask("key-of-b-456")
    assert runtime.refresh_endpoints(force=True) is False  # the same generation: nothing new


def test_a_process_s_first_look_opens_the_database_and_takes_its_endpoints(make_runtime) -> None:
    from dispatcher.store import endpoint_catalog

    first = make_runtime(endpoints=[_endpoint("a", "key-of-a-123")])
    first.adopt_file_endpoints()
    endpoint_catalog.add(first.engine, _endpoint("b", "key-of-b-123"))
    fresh = make_runtime(endpoints=[_endpoint("a", "key-of-a-123")])  # another process, the same file
    assert "engine" not in fresh.__dict__
    assert fresh.refresh_endpoints() is True  # not forced: its first look is never put off
    assert [e.name for e in fresh.settings.endpoints] == ["a", "b"]


def test_a_stored_endpoint_this_host_cannot_use_is_named_not_dropped_silently(
    make_runtime, tmp_path: Path
) -> None:
    from dispatcher.store import endpoint_catalog

    runtime = make_runtime(endpoints=[])
    runtime.adopt_file_endpoints()
    missing = {**_endpoint("c", "key-of-c-123"), "ca_bundle": str(tmp_path / "not-here.pem")}
    endpoint_catalog.add(runtime.engine, missing)
    assert runtime.refresh_endpoints(force=True) is True
    assert runtime.settings.endpoint("c") is None and runtime.unusable_endpoints == {"c"}


def test_a_retiring_secret_stops_signing_when_its_grace_ends(make_runtime) -> None:
    from datetime import UTC, datetime, timedelta

    from dispatcher.store import endpoint_catalog

    new, old = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    runtime = make_runtime(endpoints=[{**_endpoint("a", "key-of-a-123"), "signing_secret": new}])
    runtime.adopt_file_endpoints()
    definition = {**_endpoint("a", "key-of-a-123"), "signing_secret": new}
    until = datetime.now(UTC) + timedelta(hours=1)
    endpoint_catalog.update(runtime.engine, "a", definition, [endpoint_catalog.Retiring(old, until)])
    runtime.refresh_endpoints(force=True)
    assert runtime.settings.endpoints[0].signing_secrets == (new, old)
    runtime._catalog.good_until = datetime.now(UTC) - timedelta(seconds=1)  # the grace is over
    endpoint_catalog.update(
        runtime.engine, "a", definition, [endpoint_catalog.Retiring(old, datetime.now(UTC))]
    )
    runtime._catalog.generation = endpoint_catalog.generation(runtime.engine)  # only the time moved
    assert runtime.refresh_endpoints(force=True) is True
    assert runtime.settings.endpoints[0].signing_secrets == (new,)


def test_an_endpoint_unusable_on_this_host_keeps_the_one_in_force(make_runtime, tmp_path: Path) -> None:
    from dispatcher.store import endpoint_catalog

    runtime = make_runtime(endpoints=[_endpoint("a", "key-of-a-123")])
    runtime.adopt_file_endpoints()
    missing = {**_endpoint("a", "key-of-a-123"), "ca_bundle": str(tmp_path / "not-here.pem")}
    endpoint_catalog.update(runtime.engine, "a", missing)
    assert runtime.refresh_endpoints(force=True) is True
    assert runtime.settings.endpoints[0].ca_bundle is None  # the version in force stays
    log = (tmp_path / "logs" / "send-webhook-request-process.log").read_text()
    assert "stored endpoint unusable here" in log and "ca_bundle" in log


def test_a_database_that_does_not_answer_keeps_the_endpoints_in_force(make_runtime, tmp_path: Path) -> None:
    runtime = make_runtime(endpoints=[_endpoint("a", "key-of-a-123")])
    runtime.adopt_file_endpoints()
    (tmp_path / "webhooks.db").unlink()
    (tmp_path / "webhooks.db").mkdir()  # the file is now a directory: SQLite cannot open it
    runtime.engine.dispose()
    assert runtime.refresh_endpoints(force=True) is False
    assert [e.name for e in runtime.settings.endpoints] == ["a"]
    log = (tmp_path / "logs" / "send-webhook-request-process.log").read_text()
    assert log.count("endpoints not re-read") == 1
    assert runtime.refresh_endpoints(force=True) is False
    assert (tmp_path / "logs" / "send-webhook-request-process.log").read_text().count(
        "endpoints not re-read"
    ) == 1

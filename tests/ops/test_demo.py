"""The demo's parts (dispatcher.ops.demo), against the real Redis: it uses the configured Redis
when it answers and otherwise a private ``redis-server`` it stops afterwards, its settings are
its own (database, process log, queue), and its result says whether every delivery arrived.
The whole demo runs in tests/e2e/test_demo_e2e.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from dispatcher.ops import demo
from dispatcher.ops.redis_server import redis_server_binary
from tests.conftest import settings_from


def test_the_configured_redis_is_used_when_it_answers(redis_url: str) -> None:
    said: list[str] = []
    with demo.redis_for_demo(redis_url, said.append) as url:
        assert url == redis_url
    assert said == [f"using the configured Redis at {redis_url}"]


@pytest.mark.skipif(redis_server_binary() is None, reason="no redis-server")
def test_a_private_server_is_started_when_none_answers_and_stopped_after() -> None:
    said: list[str] = []
    with demo.redis_for_demo("redis://127.0.0.1:1/0", said.append) as url:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        assert client.ping() and url != "redis://127.0.0.1:1/0"
    (line,) = said
    assert line.startswith(
        "no Redis answers at redis://127.0.0.1:1/0; started an embedded redis-server on 127.0.0.1:"
    )
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


@pytest.mark.skipif(redis_server_binary() is None, reason="no redis-server")
def test_a_configured_redis_password_is_not_said() -> None:
    said: list[str] = []
    with demo.redis_for_demo("redis://:hunter2-secret@127.0.0.1:1/0", said.append):
        pass
    assert said and "hunter2-secret" not in said[0] and "127.0.0.1:1/0" in said[0]


def test_the_demos_settings_are_its_own(tmp_path: Path) -> None:
    base = settings_from(
        {"endpoints": [{"name": "real", "url": "https://real.example.com", "key": "k-real-1"}]}
    )
    settings = demo.demo_settings(
        base, "redis://127.0.0.1:6379/0", "http://127.0.0.1:8765/webhooks", tmp_path
    )
    assert (settings.environment, settings.queue_name) == ("demo", demo.DEMO_QUEUE)
    assert settings.queue_name != base.queue_name  # real workers never pick up demo jobs
    assert settings.database_url == f"sqlite:///{tmp_path / 'webhooks.db'}"
    assert settings.process_log.startswith(str(tmp_path))
    assert [(e.name, e.url, e.key) for e in settings.endpoints] == [
        ("demo-partner", "http://127.0.0.1:8765/webhooks", demo.DEMO_KEY)
    ]
    assert settings.delivery.max_attempts == 3 and "127.0.0.0/8" in settings.allow_networks


def test_the_result_is_ok_only_when_finished_and_every_delivery_arrived() -> None:
    result = demo.DemoResult(
        request_ids=["a", "b"], deliveries=[{"status": "delivered"}, {"status": "failed"}]
    )
    assert result.delivered == 1 and not result.ok
    result.finished = True
    assert not result.ok
    result.deliveries[1]["status"] = "delivered"
    assert result.delivered == 2 and result.ok
    assert not demo.DemoResult(request_ids=["a"], deliveries=[{"status": "delivered"}]).ok  # not finished

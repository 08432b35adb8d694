"""The private ``redis-server`` (dispatcher.ops.redis_server), a real process on a free loopback
port: it answers once started, SIGKILL loses everything, it starts again empty on the same port,
stopping removes the folder it made, and a server that cannot start is one named error."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import redis

from dispatcher.ops import redis_server
from dispatcher.ops.redis_server import RedisServer, RedisServerError

pytestmark = pytest.mark.skipif(redis_server.redis_server_binary() is None, reason="no redis-server")


def test_a_free_port_is_one_nothing_listens_on() -> None:
    port = redis_server.free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))  # nothing holds it


def test_the_binary_is_taken_from_path_first() -> None:
    if shutil.which("redis-server"):
        assert redis_server.redis_server_binary() == shutil.which("redis-server")
    else:
        assert Path(redis_server.redis_server_binary()).name == "redis-server"


def test_killed_it_loses_everything_and_starts_again_empty_on_the_same_port() -> None:
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        client.set("kept?", "no")
        server.kill()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert (server.starts, client.get("kept?")) == (2, None)
        assert client.dbsize() == 0
        client.close()
        folder = server.directory
        assert (folder / "redis-1.log").exists() and (folder / "redis-2.log").exists()
    assert server.process.poll() is not None and not folder.exists()


def test_a_folder_it_was_given_is_kept(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    server.stop()
    assert server.process.poll() is not None
    assert (tmp_path / "redis-1.log").exists()


def test_a_server_that_cannot_start_is_one_named_error(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, binary=shutil.which("false"))  # exits at once, as a broken install
    with pytest.raises(RedisServerError, match=rf"\(.*false\) did not start on port {server.port}$"):
        server.start(timeout=5)
    server.stop()


def test_without_a_binary_the_error_says_what_to_install(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.binary = None
    with pytest.raises(RedisServerError, match="no redis-server is installed; install redis-server or"):
        server.start()


def test_a_port_another_redis_holds_is_refused_not_taken_for_ours(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = RedisServer(tmp_path / "first").start()
    try:
        with pytest.raises(RedisServerError, match=f"port {first.port} is taken by another Redis"):
            RedisServer(tmp_path / "second", port=first.port).start()
    finally:
        first.stop()

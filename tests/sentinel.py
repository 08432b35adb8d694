"""A real Redis Sentinel set on loopback ports, for the failover tests and the benchmark.

A primary and one replica (``redis-server``, nothing kept on disk) and three ``redis-sentinel``
processes watching the primary under the name ``mymaster`` with a quorum of 2. Every process is
started by :meth:`SentinelSet.start` and ended by :meth:`SentinelSet.stop` (also on failure:
use it as a context manager). The primary is declared down after 1 s without an answer.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from dispatcher.ops.redis_server import free_port

MASTER = "mymaster"
DOWN_AFTER_MS = 1000


def sentinel_binary() -> str | None:
    return shutil.which("redis-sentinel")


def distinct_free_ports(count: int) -> list[int]:
    """``count`` free loopback ports, all different: two probes in a row can be given the same
    port (a fresh-clone run had a Sentinel and the replica both on 41813, and the Sentinel
    could not start)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class SentinelSet:
    """Primary + replica + three Sentinels; :attr:`url` is the dispatcher's ``redis_url``."""

    def __init__(self, directory: Path, db: int = 0) -> None:
        self.directory = directory
        self.db = db
        ports = distinct_free_ports(5)
        self.data_ports, self.sentinel_ports = ports[:2], ports[2:]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.primary_port = self.data_ports[0]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/{self.db}"

    def _spawn(self, port: int, args: list[str], name: str) -> None:
        log = open(self.directory / f"{name}-{port}.log", "ab")  # the child holds it
        self.processes[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def _server(self, port: int, *extra: str) -> None:
        self._spawn(
            port,
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(self.directory), *extra],
            "redis",
        )

    def start(self, timeout: float = 30) -> SentinelSet:
        self.directory.mkdir(parents=True, exist_ok=True)
        primary, replica = self.data_ports
        self._server(primary)
        self._server(replica, "--replicaof", "127.0.0.1", str(primary))
        for port in self.sentinel_ports:
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self._spawn(port, ["redis-sentinel", str(conf)], "sentinel")
        self._wait(self._ready, timeout, "the Sentinels to see the primary, its replica and each other")
        return self

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5, decode_responses=True)

    def _ready(self) -> bool:
        for port in self.sentinel_ports:
            with self.sentinel(port) as client:
                state = client.sentinel_master(MASTER)
                if state.get("num-slaves", 0) < 1 or state.get("num-other-sentinels", 0) < 2:
                    return False
        with redis.Redis(port=self.data_ports[1], socket_connect_timeout=0.5) as replica:
            return replica.info("replication").get("master_link_status") == "up"

    def named_primary(self) -> int | None:
        """The primary's port as the first Sentinel that answers names it."""
        for port in self.sentinel_ports:
            try:
                with self.sentinel(port) as client:
                    return int(client.sentinel_get_master_addr_by_name(MASTER)[1])
            except (redis.RedisError, TypeError):
                continue
        return None

    def kill_primary(self) -> int:
        """SIGKILL to the primary (its data gone with it); returns its port."""
        port = self.primary_port
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return port

    def wait_failover(self, timeout: float = 30) -> int:
        """Waits until the Sentinels name the replica as primary; returns its port."""
        old = self.primary_port
        self._wait(lambda: self.named_primary() not in (None, old), timeout, "a new primary")
        self.primary_port = self.named_primary() or old
        return self.primary_port

    def _wait(self, check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            for port, process in self.processes.items():
                if process.poll() is not None and port != self.primary_port:
                    raise RuntimeError(f"a Redis process on port {port} exited; see {self.directory}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f}s for {what}; logs in {self.directory}")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
        for process in self.processes.values():
            process.wait(timeout=10)

    def __enter__(self) -> SentinelSet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

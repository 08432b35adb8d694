"""Worker hosts in Linux network namespaces, for the network tests and the benchmark.

:class:`NetLab` makes a bridge with an address of its own (the service host's side, where Redis,
PostgreSQL and the partner receiver are reached) and one namespace per worker host, joined to
the bridge by a veth pair, all on a private /24 that nothing else on the machine uses. Workers
run inside their namespace (``ip netns exec``) and reach the services only through the
bridge's address, where a :class:`FaultProxy` per service forwards to the real server (adding
latency, and on command stalling or resetting every connection). A partition is ``ip link set
... down`` on the host's veth at the bridge. Everything the lab made is removed by
:meth:`NetLab.close`, on failure too (use it as a context manager).

This kernel has no netem and no netfilter: latency and faults come from the proxy.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType


def unavailable() -> str | None:
    """Why namespaces cannot be made here (one line), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    name = f"dsp-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class NetLab:
    """A bridge (the service host's address ``.1``) and ``hosts`` namespaces (``.11``, ``.12``…)."""

    def __init__(self, hosts: int, directory: Path) -> None:
        tag = f"{os.getpid() % 1000:03d}{random.randint(0, 99):02d}"
        self.tag = tag
        self.subnet = f"10.{random.randint(64, 250)}.{random.randint(1, 250)}"
        self.bridge = f"dspbr{tag}"
        self.service_ip = f"{self.subnet}.1"
        self.hosts = [f"dsp{tag}h{n}" for n in range(1, hosts + 1)]
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.made_links: list[str] = []
        self.made_namespaces: list[str] = []

    @property
    def network(self) -> str:
        return f"{self.subnet}.0/24"

    def host_ip(self, host: str) -> str:
        return f"{self.subnet}.{11 + self.hosts.index(host)}"

    def _outer(self, host: str) -> str:
        return f"dv{self.tag}{self.hosts.index(host) + 1}"

    def start(self) -> NetLab:
        self.directory.mkdir(parents=True, exist_ok=True)
        _ip("link", "add", self.bridge, "type", "bridge")
        self.made_links.append(self.bridge)
        _ip("addr", "add", f"{self.service_ip}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in self.hosts:
            outer, inner = self._outer(host), "eth0"
            _ip("netns", "add", host)
            self.made_namespaces.append(host)
            _ip(
                "link",
                "add",
                outer,
                "type",
                "veth",
                "peer",
                "name",
                f"dp{self.tag}{self.hosts.index(host) + 1}",
            )
            self.made_links.append(outer)
            _ip("link", "set", f"dp{self.tag}{self.hosts.index(host) + 1}", "netns", host, "name", inner)
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            _ip("-n", host, "addr", "add", f"{self.host_ip(host)}/24", "dev", inner)
            _ip("-n", host, "link", "set", inner, "up")
            _ip("-n", host, "link", "set", "lo", "up")
        return self

    def run(self, host: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Starts ``args`` inside ``host``'s namespace."""
        with open(log, "ab") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", host, *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def partition(self, host: str) -> None:
        """Cuts ``host`` off: its veth at the bridge goes down (packets are dropped, no reset)."""
        _ip("link", "set", self._outer(host), "down")

    def heal(self, host: str) -> None:
        _ip("link", "set", self._outer(host), "up")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for host in self.made_namespaces:  # also ends anything left inside (pids by namespace)
            pids = subprocess.run(["ip", "netns", "pids", host], capture_output=True, text=True).stdout
            for pid in pids.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", host], capture_output=True)
        for link in self.made_links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        self.processes, self.made_namespaces, self.made_links = [], [], []  # a second close does nothing

    def __enter__(self) -> NetLab:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FaultProxy:
    """Forwards ``listen`` -> ``target`` with ``delay`` seconds added each way; :meth:`stall`
    holds every byte until :meth:`resume`; :meth:`reset` ends every open connection with a RST."""

    def __init__(self, listen_host: str, target: tuple[str, int], delay: float = 0.002) -> None:
        self.target = target
        self.delay = delay
        self.flowing = threading.Event()
        self.flowing.set()
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.upstreams: list[socket.socket] = []
        """Every connection ever made to the target: all are cut at :meth:`close`, so no client
        of the target (a worker's blocking dequeue on Redis) outlives the proxy."""
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((listen_host, 0))
        self.listener.listen(256)
        self.host, self.port = listen_host, self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def reset(self) -> int:
        with self.lock:
            open_now, self.connections = list(self.connections), set()
        for sock in open_now:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass
        return len(open_now) // 2

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.reset()
        with self.lock:
            upstreams, self.upstreams = self.upstreams, []
        for sock in upstreams:  # also those whose client vanished without a word (a deleted namespace)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.upstreams.append(upstream)
                if self.closed:
                    upstream.close()
                    client.close()
                    continue
                self.connections.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                self.connections.discard(src)
                self.connections.discard(dst)

"""The processes the benchmark starts: each in its own process group, its output in a log file.

:class:`Processes` starts and stops them; :func:`child_env` is their environment (the code
under test first on ``PYTHONPATH``); the instant receiver (nginx ``return 200`` when nginx is
installed, else ``bench/receiver.py``) and the slow one (``bench/receiver.py`` with a delay);
:func:`our_worker` is ``python worker.py`` of the code under test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from . import CODE, ROOT, SLOW_DELAY, say


class Processes:
    """Every process the benchmark starts, each in its own process group, stopped in ``close``."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen] = []
        self.count = 0

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        self.count += 1
        log = open(self.logdir / f"{self.count:03d}-{name}.log", "wb")  # closed in stop()
        proc = subprocess.Popen(
            cmd,
            cwd=CODE,
            env=env or child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log = log  # type: ignore[attr-defined]
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self, procs: list[subprocess.Popen], sig: int = signal.SIGTERM, grace: float = 20) -> None:
        """SIGTERM each process's group (the process and what it forked), then SIGKILL after ``grace``."""
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"process {proc.pid} ignored SIGTERM for {grace:.0f} s; SIGKILL")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            # what the process forked (RQ's scheduler) may outlive it in the group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.log.close()  # type: ignore[attr-defined]
            if proc in self.procs:
                self.procs.remove(proc)

    def close(self) -> None:
        self.stop(list(self.procs), grace=10)


def child_env(config: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(CODE), str(ROOT)]))
    env["PYTHONUNBUFFERED"] = "1"
    if config is not None:
        env["DISPATCHER_CONFIG"] = str(config)
    return env


def tail(proc: subprocess.Popen, lines: int = 15) -> str:
    try:
        text = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def our_worker(procs: Processes, config: Path, name: str, burst: bool) -> subprocess.Popen:
    cmd = [sys.executable, "worker.py", *(["--burst"] if burst else [])]
    return procs.start(name, cmd, child_env(config))


# --- receivers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}:\n{tail(proc)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"receiver on port {port} did not start:\n{tail(proc)}")


def check_receiver(url: str) -> None:
    with requests.Session() as session:
        response = session.post(url, data=b'{"ping":1}', timeout=5)
        if response.status_code != 200:
            raise RuntimeError(f"receiver {url} answered {response.status_code}")


NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_buffer_size 1m;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def start_instant_receiver(procs: Processes, tmp: Path) -> tuple[str, str]:
    """nginx ``return 200`` when nginx is installed, else the asyncio receiver. Returns (url, kind)."""
    port = free_port()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        ndir = tmp / "nginx"
        ndir.mkdir()
        conf = ndir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=ndir, port=port))
        proc = procs.start("nginx", [nginx, "-p", str(ndir), "-c", str(conf)])
        try:
            wait_for_port(port, proc)
            url = f"http://127.0.0.1:{port}/hook"
            check_receiver(url)
            version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
            return url, version.replace("nginx version: ", "") + " (return 200)"
        except RuntimeError as exc:
            say(f"nginx did not start ({exc}); using the asyncio receiver")
            procs.stop([proc])
            port = free_port()
    proc = procs.start("receiver", [sys.executable, "-m", "bench.receiver", str(port)])
    wait_for_port(port, proc)
    url = f"http://127.0.0.1:{port}/hook"
    check_receiver(url)
    return url, "asyncio raw-protocol receiver (bench/receiver.py)"


def start_slow_receiver(procs: Processes) -> str:
    port = free_port()
    proc = procs.start("slow-receiver", [sys.executable, "-m", "bench.receiver", str(port), str(SLOW_DELAY)])
    wait_for_port(port, proc)
    url = f"http://127.0.0.1:{port}/hook"
    check_receiver(url)
    return url

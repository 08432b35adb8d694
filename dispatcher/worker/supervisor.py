"""``worker --concurrency N``: N worker processes under one supervisor.

Each child is an ordinary worker (``python -m dispatcher worker --name NAME``), so the
supervisor adds no behaviour of its own to a delivery; the children share its terminal, each
printing its own line per attempt. It starts them, replaces a child that
dies (under a new name, so reconcile sees the dead one's liveness expire and recovers its
delivery), and on SIGTERM or SIGINT passes the signal on and waits for every child to finish
its current attempt. RQ's scheduler lock lets one child at a time run the scheduler.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from ..logs import log_line

RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0


@dataclass
class Child:
    slot: int
    name: str
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    def __init__(
        self,
        concurrency: int,
        base_name: str,
        burst: bool = False,
        threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.concurrency = concurrency
        self.threads = threads
        self.verbose = verbose
        self.base_name = base_name
        self.burst = burst
        self.children: dict[int, Child] = {}
        self.generation = 0
        self.stopping = False
        self.restart_delay = RESTART_DELAY_SECONDS

    def _spawn(self, slot: int) -> Child:
        self.generation += 1
        name = f"{self.base_name}.{slot}.{self.generation}"
        command = [sys.executable, "-m", "dispatcher", "worker", "--name", name]
        if self.burst:
            command.append("--burst")
        if self.threads is not None:
            command += ["--threads", str(self.threads)]
        if self.verbose:
            command.append("--verbose")
        # Children ignore SIGINT from the terminal's process group: the supervisor forwards it once.
        process = subprocess.Popen(command, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        child = Child(slot, name, process, time.monotonic())
        self.children[slot] = child
        log_line(logging.INFO, "supervisor started worker", worker=name, pid=process.pid)
        return child

    def _request_stop(self, signum: int, _frame: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        for slot in range(self.concurrency):
            self._spawn(slot)
        while True:
            alive = 0
            for slot, child in list(self.children.items()):
                code = child.process.poll()
                if code is None:
                    alive += 1
                    continue
                if self.stopping or (self.burst and code == 0):
                    continue
                log_line(logging.ERROR, "worker died; replacing it", worker=child.name, exit_code=code)
                # A child that dies at once again and again backs off instead of spinning.
                lived = time.monotonic() - child.started
                self.restart_delay = (
                    RESTART_DELAY_SECONDS
                    if lived > 60
                    else min(self.restart_delay * 2, MAX_RESTART_DELAY_SECONDS)
                )
                time.sleep(self.restart_delay)
                if not self.stopping:
                    self._spawn(slot)
                    alive += 1
            if alive == 0:
                break
            time.sleep(0.5)
        codes = [child.process.returncode for child in self.children.values()]
        log_line(logging.INFO, "supervisor stopped", workers=len(codes))
        # A child still starting when asked to stop dies of the SIGTERM itself: that is a clean stop.
        clean = (0, -signal.SIGTERM) if self.stopping else (0,)
        return 0 if all(code in clean for code in codes) else 1


def default_base_name() -> str:
    import socket

    return f"{socket.gethostname()}.{os.getpid()}"

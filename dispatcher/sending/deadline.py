"""An attempt's deadline, whatever the partner does.

``requests``' timeouts bound each socket read, not the attempt: a partner that sends its
status line, its headers or its body one byte at a time keeps every read short and the
attempt open for as long as it likes. So each attempt arms an :class:`Alarm` for
``timeout + connect_timeout`` from its start; the connection it uses attaches its socket
(a new one when it connects, a kept-alive one when it sends), and one watchdog thread per
process shuts the socket down when the alarm goes off. The blocked read returns at once, the
attempt is recorded as a timeout, and the sender thread is free again.

The alarm belongs to the thread that makes the attempt (each sender thread makes one at a
time), so the connection finds it without being told.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Alarm:
    """One attempt's deadline and the sockets it may cut."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self.done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        """The attempt uses ``sock``: cut it at the deadline (at once if that has passed)."""
        if sock is None:
            return
        with self._lock:
            if self.done:
                return
            self._sockets.append(sock)
            late = self.fired or time.monotonic() >= self.deadline
        if late:
            self.fire()

    def fire(self) -> None:
        """The deadline passed: every socket of the attempt is shut down."""
        with self._lock:
            if self.done:
                return
            self.fired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed, or never connected
                pass

    def finish(self) -> None:
        """The attempt is over: nothing of it is cut any more (its socket may go back to the pool)."""
        with self._lock:
            self.done = True
            self._sockets = []


class Watchdog:
    """One thread that fires alarms at their deadlines (started on first use)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Alarm:
        alarm = Alarm(time.monotonic() + seconds)
        with self._wake:
            heapq.heappush(self._heap, (alarm.deadline, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="dispatcher-deadlines", daemon=True)
                self._thread.start()
            self._wake.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, _, alarm = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not alarm.done:
                alarm.fire()


WATCHDOG = Watchdog()
_current = threading.local()


def current() -> Alarm | None:
    """The alarm of the attempt this thread is making, if any."""
    return getattr(_current, "alarm", None)


@contextmanager
def deadline(seconds: float) -> Iterator[Alarm]:
    """Arms an alarm ``seconds`` from now for the attempt made inside the block, on this thread."""
    alarm = WATCHDOG.arm(seconds)
    _current.alarm = alarm
    try:
        yield alarm
    finally:
        _current.alarm = None
        alarm.finish()

"""Pacing simulated traffic: events at a steady rate, handed to ``send`` (``dispatch`` in the
CLI), with a running summary. ``--rate`` is parsed here; ``--duration`` by
:func:`dispatcher.times.parse_duration`."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .encounters import SIM_EPOCH

_RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    """Events per second from ``5/s``, ``5`` (per second), ``300/m`` or ``100/h``.

    Raises:
        ValueError: not a positive rate in one of those forms.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|m|min|h))?\s*", str(text))
    if not match:
        raise ValueError(f"{text!r} is not a rate; use events per second or a unit: 5/s, 5, 300/m, 100/h")
    per_second = float(match.group(1)) / _RATE_UNITS[match.group(2) or "s"]
    if not math.isfinite(per_second) or per_second <= 0:
        raise ValueError(f"{text!r}: the rate must be greater than 0")
    return per_second


@dataclass
class Summary:
    planned: int
    rate: float
    seed: int | None = None
    dry_run: bool = False
    events: int = 0
    deliveries: int = 0
    by_event: Counter[str] = field(default_factory=Counter)
    elapsed_seconds: float = 0.0
    interrupted: bool = False

    @property
    def achieved_rate(self) -> float:
        return self.events / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "planned_events": self.planned,
            "events_by_type": dict(sorted(self.by_event.items())),
            "deliveries": self.deliveries,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "target_rate": round(self.rate, 3),
            "achieved_rate": round(self.achieved_rate, 3),
            "seed": self.seed,
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
        }


def run(
    stream: Iterable[tuple[str, dict[str, Any]]],
    *,
    rate: float,
    count: int,
    send: Callable[[str, dict[str, Any]], int],
    summary: Summary | None = None,
    on_event: Callable[[Summary], None] | None = None,
    pace: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """Sends ``count`` events from ``stream``, the i-th due ``i / rate`` seconds after the start.

    ``send(event, data)`` returns how many deliveries it created. A late send does not shift
    the schedule: the next ones go out at once until it is caught up. Ctrl-C stops the run
    and marks the summary ``interrupted``.
    """
    summary = summary or Summary(planned=count, rate=rate)
    started = clock()
    try:
        for index, (event, data) in enumerate(stream):
            if index >= count:
                break
            if pace:
                wait = started + index / rate - clock()
                if wait > 0:
                    sleep(wait)
            summary.deliveries += send(event, data)
            summary.events += 1
            summary.by_event[event] += 1
            summary.elapsed_seconds = clock() - started
            if on_event is not None:
                on_event(summary)
        if pace:
            # The run lasts its duration: the last event's slot ends 1/rate after it went out.
            wait = started + summary.events / rate - clock()
            if wait > 0:
                sleep(wait)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed_seconds = clock() - started
    return summary


def planned_events(rate: float, duration_seconds: float) -> int:
    """Events a run sends: ``rate × duration``, at least one."""
    return max(1, round(rate * duration_seconds))


def start_for(seed: int | None, now: datetime | None = None) -> datetime:
    """The simulated clock's start: :data:`SIM_EPOCH` with a seed (reproducible), else now."""
    if seed is not None:
        return SIM_EPOCH
    return (now or datetime.now(UTC)).replace(microsecond=0)

"""The benchmark's shared machinery: where the code under test is, the fixed names and sizes.

Importing this package puts the checkout under test (``BENCH_CODE``, else this one) first on
``sys.path``, so ``dispatcher`` is imported from there; import ``bench`` itself before (the
entry points put this repository first), so ``bench.*`` stays this checkout's. Submodules:

* :mod:`.processes` the processes the benchmark starts: receivers, our workers, their env.
* :mod:`.procfs`    readings from ``/proc``: RSS, PSS, CPU time, children.
* :mod:`.services`  Redis DB 4, the ``bench`` database, the machine's description, and
  :func:`~.services.watch_drain`, which measures burst workers by their queue.
* :mod:`.config`    the YAML configuration our processes read.
* :mod:`.driver`    the code under test in this process (``dispatch_many``, the store); the
  only submodule that imports ``dispatcher``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CODE = Path(os.environ.get("BENCH_CODE") or ROOT).resolve()
"""The checkout under test (its ``dispatcher/`` and ``worker.py``): this one, or ``BENCH_CODE``."""
for _path in (ROOT, CODE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

REDIS_URL = "redis://127.0.0.1:6379/4"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
QUEUE_NAME = "bench-webhooks"
RQ_QUEUE_NAME = "bench-rq"
EVENT = "order_changed"
KEY = "bench-key-0123456789"
SLOW_DELAY = 0.1
BATCH = 500
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
SCENARIOS = (
    "worker",
    "slow",
    "dispatch",
    "drain",
    "cli_startup",
    "encryption",
    "ordering",
    "console",
    "network",
    "oauth2",
    "breaker",
    "api",
    "telemetry",
)
"""``--only`` takes one of these; each is ``bench/scenarios/<name>.py``, run in this order."""
DRAIN_WORKERS = 4
THREADS_PER_PROCESS = 16
"""The slow scenario's layout: N concurrent deliveries run as ceil(N / 16) processes sharing N threads."""


@dataclass(frozen=True)
class Sizes:
    repeats: int
    ours: int
    floor: int
    naive: int
    ceiling: int
    slow_workers: tuple[int, ...]
    slow_processes_only: tuple[int, ...]
    slow_settle: float
    slow_window: float
    dispatch_calls: int
    dispatch_batches: int
    drain: int


QUICK = Sizes(
    repeats=1,
    ours=300,
    floor=600,
    naive=100,
    ceiling=1000,
    slow_workers=(1, 4, 16, 32),
    slow_processes_only=(16, 32),
    slow_settle=1,
    slow_window=3,
    dispatch_calls=300,
    dispatch_batches=4,
    drain=2000,
)
FULL = Sizes(
    repeats=2,
    ours=1000,
    floor=2000,
    naive=300,
    ceiling=2500,
    slow_workers=(1, 4, 16, 32),
    slow_processes_only=(16, 32),
    slow_settle=3,
    slow_window=10,
    dispatch_calls=2000,
    dispatch_batches=20,
    drain=20000,
)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

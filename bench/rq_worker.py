"""A plain RQ worker for the baselines: ``python -m bench.rq_worker URL QUEUE simple|fork``.

Burst mode, with RQ's scheduler and INFO logging, as our worker runs.
"""

from __future__ import annotations

import sys

import redis
from rq import Queue, SimpleWorker, Worker


def main(argv: list[str]) -> int:
    redis_url, queue_name, kind = argv
    connection = redis.Redis.from_url(redis_url)
    cls = SimpleWorker if kind == "simple" else Worker
    worker = cls([Queue(queue_name, connection=connection)], connection=connection)
    worker.work(burst=True, with_scheduler=True, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

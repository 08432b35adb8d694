"""Per-key ordering on the worker's side: what a job does with a delivery that waits behind the
head of its key, and waking the next head when one is final.

The order itself is kept by the database (:mod:`dispatcher.store.ordering`: the claim takes an
ordered delivery only when nothing earlier in its key is pending). A delivery the claim refuses
for that reason is *waiting*: its job is scheduled to look again (just after its head's retry
is due, or :data:`~dispatcher.policy.ordering.PARK_SECONDS` from now) and ends, holding no
thread and no worker. When a worker records a delivery of an ordered endpoint as final, it
wakes the new head of that key at once: the head's scheduled job moves to the queue. Every
waiting delivery keeps a job, so a lost wake-up costs a key at most its wait, never the delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from .. import queue, store
from ..logs import log_line
from ..policy.ordering import wake_in
from ..runtime import Runtime
from .results import POISON, Result, retry_in


def any_ordered(runtime: Runtime) -> bool:
    return any(endpoint.ordered for endpoint in runtime.settings.endpoints)


def not_claimed(runtime: Runtime, request_ids: list[str]) -> dict[str, Result]:
    """The result of each delivery the claim refused: waiting behind its key's head (its job
    looks again later), already done or held by another worker (nothing to do), or no row at
    all (a poison job)."""
    existing = store.existing_deliveries(runtime.engine, request_ids)
    waiting = (
        store.ordering.parked(runtime.engine, [r for r in request_ids if r in existing])
        if any_ordered(runtime)
        else {}
    )
    now = datetime.now(UTC)
    results: dict[str, Result] = {}
    for request_id in request_ids:
        if request_id in waiting:
            results[request_id] = retry_in(wake_in(waiting[request_id], now))
        elif request_id in existing:
            results[request_id] = None  # delivered, failed, or held by another worker: nothing to do
        else:
            log_line(logging.ERROR, "poison job: no delivery row", request_id=request_id)
            results[request_id] = POISON
    return results


def hand_off(runtime: Runtime, settled: Iterable[str], waiting: Iterable[str] = ()) -> int:
    """After a batch's results are in Redis: wakes the head of every ordered key a ``settled``
    delivery belongs to, and any ``waiting`` delivery (one the claim refused as not its key's
    head) that became its key's head meanwhile -- its head finished between the claim and now.
    A head waiting for its own retry is left to it. Returns how many it woke. A failure here is
    logged, never raised: every waiting delivery's own job looks again later."""
    if not any_ordered(runtime):
        return 0
    try:
        now = datetime.now(UTC)
        heads = {
            h.request_id
            for h in store.ordering.heads_after(runtime.engine, list(settled))
            if h.next_attempt_at is None or h.next_attempt_at <= now  # a head's own retry keeps its time
        }
        waiting = list(waiting)
        if waiting:
            heads |= store.ordering.heads_among(runtime.engine, waiting)
        return len(queue.wake(runtime.queue, sorted(heads))) if heads else 0
    except Exception as exc:  # noqa: BLE001 - Redis or the database away: the jobs look again
        log_line(logging.WARNING, "ordered key hand-off failed", error=f"{type(exc).__name__}: {exc}")
        return 0


def became_head(runtime: Runtime, request_id: str) -> bool:
    """Whether a delivery the claim refused as waiting is its key's head by now."""
    if not any_ordered(runtime):
        return False
    try:
        return request_id in store.ordering.heads_among(runtime.engine, [request_id])
    except Exception:  # noqa: BLE001 - the database away: its job looks again later anyway
        return False

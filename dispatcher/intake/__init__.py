"""The intake room: where an event enters -- ``dispatch()``, ``dispatch_many()`` and the outbox.

Owns: the one request every way in hands it (:class:`DispatchRequest`, :mod:`.request`: from
``dispatch()``, ``dispatch_many()``, the outbox, ``dispatcher send``, replay and the HTTP API);
turning requests into deliveries, every gate in one place (validate against the contract, choose
the endpoints, the disabled rule, the size, wrap: :mod:`.prepare`), storing them durably and then
queueing them (:mod:`.dispatch`), requests of any events at once with each mistake named by
its place (:mod:`.itemized`, for the HTTP API), and doing so inside the caller's own transaction
(:mod:`.outbox`); the caller's keys (:mod:`.keys`); the one rule for a disabled endpoint that
every way in follows, replay and retry included (:mod:`.disabled`).

May import: ``runtime``, ``store``, ``queue``, ``config``, ``contract`` and the shared kernel.

Invariants: an invalid event is never stored or queued; every delivery is committed before its
job goes to Redis; if Redis refuses, the call still returns the ids and reconcile queues them.
"""

from .request import DispatchRequest

__all__ = ["DispatchRequest"]

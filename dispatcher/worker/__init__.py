"""The worker room: the process that runs RQ jobs, and everything a job does with a delivery.

Owns: the RQ job and its batch (:mod:`.batch`), what a delivery's job returns -- a retry, done
or poison (:mod:`.results`) --, a flight of deliveries from claim to record
(:mod:`.flight`), the breaker and pause gates of a flight and the breaker's alerts
(:mod:`.breaking`), recording attempts and the local spool (:mod:`.recording`, :mod:`.spool`),
reconcile's I/O (:mod:`.reconcile`; its verdicts are in ``policy``), liveness
(:mod:`.liveness`: a key in Redis and a lease in the database), the heartbeat, lease and
housekeeping threads (:mod:`.housekeeping`, which also runs the alerts' pass), the worker
process and its supervisor (:mod:`.process`, :mod:`.supervisor`), and Prometheus metrics
(:mod:`.metrics`).

May import: ``intake``, ``alerts``, ``runtime``, ``queue``, ``sending``, ``store``, ``policy``, ``config``,
``contract`` and the shared kernel; never ``ops`` or ``cli``. Of RQ, only its public names
(``SimpleWorker``, ``Retry``, ``get_current_job``): RQ's Redis layout is ``queue``'s alone.

Invariants: a backoff is a scheduled RQ job, never a sleep; a delivery is claimed before its
POST and its attempt is recorded (or spooled) before its next step; a claim never outlives the
job that made it (given back, recorded, or left to reconcile when the process dies).
"""

"""The policy room: every decision of the flow, as pure functions of values.

Owns: what follows an attempt -- deliver, retry and when, or fail (:mod:`.retry`); when a
failure disables an endpoint (:mod:`.health`); the gates a claimed delivery passes before its
POST (:mod:`.gates`); reconcile's verdict on one unfinished delivery (:mod:`.reconcile`); an endpoint's circuit
breaker (:mod:`.breaker`); and the alerts' windows, backoff and episodes (:mod:`.alerting`).

May import: ``config`` and the shared kernel, nothing else: no Redis, HTTP, SQL or RQ library
(a contract CI checks). Clocks and randomness come in as arguments, so every decision is
tested with no server.
"""

"""The sending room: one HTTP attempt to a partner, and what may stop it from being made.

Owns: the POST and its classification into a :class:`~dispatcher.policy.retry.DeliveryOutcome`
(:mod:`.attempt`), a failure in one line a person can act on (:mod:`.explain`), the destination
guard that keeps the sender off private networks (:mod:`.guard`) and its check of every
endpoint's addresses before a worker starts (:mod:`.preflight`), the endpoint limits shared by
every worker through Redis (:mod:`.limits`, its Lua in ``.lua`` files beside it); how a POST
reaches a partner -- its session (CA bundle, client certificate) and proxy (:mod:`.connections`);
one OAuth2 client credentials token (:mod:`.oauth2`), and tokens shared by every process through
Redis with one fetch at a time per endpoint (:mod:`.tokens`); and the check of every endpoint's
credential files before anything runs (:mod:`.credentials`, for ``config check``); each
endpoint's circuit breaker, shared by every worker through Redis -- a window of per-second
counts, the state moved by one process at a time, one probe (:mod:`.breaker`, its Lua beside it).

May import: ``policy`` (the outcome type), ``contract`` (the headers a partner checks),
``config`` and the shared kernel. Knows nothing of the database or RQ.

Invariants: a redirect is never followed; an address outside ``allow_networks`` is never
connected to (checked on the socket actually connected); a secret never reaches an error text.
"""

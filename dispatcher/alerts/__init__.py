"""The alerts room: telling the people on call what happened -- an endpoint disabled, its
breaker opened or closed again, deliveries that ran out of attempts, a stalled queue, no worker
alive -- through the channels the rules name (a signed webhook, a mail).

Owns: what an alert says, as JSON and as a mail (:mod:`.messages`); one channel's send and its
answer in one line (:mod:`.channels`); the Redis lock that lets one process at a time evaluate
and send (:mod:`.lock`); deriving occurrences from the log -- grouped failures, a backlog, no
worker alive -- and ending episodes (:mod:`.evaluate`); giving each new alert its send rows for
the channels its rules name (:mod:`.routing`); sending what is due, retried with backoff as a
due time, never a sleep (:mod:`.sending`); one pass of all of it (:mod:`.run`).

May import: ``runtime``, ``store``, ``queue``, ``sending`` (a failure in words), ``policy`` (the
windows, backoff and episodes as pure decisions), ``config``, ``contract`` (signing) and the
shared kernel; ``worker``, ``ops``, ``console`` and ``cli`` import it.

Invariants: an occurrence is raised once (its unique text), and a channel sent each alert once;
no PHI leaves: names, counts, request ids and categories only; no secret in an answer.
"""

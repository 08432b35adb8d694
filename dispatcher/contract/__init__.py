"""The contract room: what a partner receives, defined once.

Owns: the six events and their fields (:mod:`.catalogue`) and their validation
(:mod:`.validation`), the standard wrapper and its rendering per attempt (:mod:`.wrapper`), and
Standard Webhooks signatures (:mod:`.signing`).

May import: only the shared kernel (``vocabulary``, ``times``, ``errors``). Pure: no I/O.

Invariant: ``outgoing-webhooks-api.txt`` is the source; nothing here changes what a partner
receives without it.
"""

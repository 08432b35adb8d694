"""The contract room: what a partner receives, defined once.

Owns: the six events and their fields (:mod:`.catalogue`) and their validation
(:mod:`.validation`), the standard wrapper and its rendering per attempt (:mod:`.wrapper`),
Standard Webhooks signatures (:mod:`.signing`), and the documents partners load -- a JSON Schema
per event and the OpenAPI document, with named components and examples that pass them with
formats checked (:mod:`.schemas`, :mod:`.openapi`).

May import: only the shared kernel (``vocabulary``, ``times``, ``errors``). Pure: no I/O.

Invariant: ``outgoing-webhooks-api.txt`` is the source; nothing here changes what a partner
receives without it.
"""

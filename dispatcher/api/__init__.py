"""The api room: the HTTP API (``dispatcher api``) through which services in any language
dispatch events and operators act, as ``dispatch()``, the CLI and the console do.

Owns: the ASGI app and its routes (:mod:`.app`), RFC 9457 problem documents (:mod:`.problems`),
reading a request's JSON within ``api.max_body_bytes`` (:mod:`.bodies`), who may call -- bearer
tokens, scopes and the per-token rate limit shared in Redis (:mod:`.auth`, :mod:`.ratelimit`) --,
events in (:mod:`.events`, with field paths in every error), the ``Idempotency-Key`` header
(:mod:`.idempotency`), deliveries (:mod:`.deliveries`), endpoints (:mod:`.endpoints`), health
(:mod:`.health`), the API's own OpenAPI document (:mod:`.openapi`) and serving it
(:mod:`.serve`).

May import: ``ops``, ``intake``, ``runtime``, ``store`` (reads the doors already use, never SQL of
its own), ``config``, ``contract`` and the shared kernel; never ``cli`` or ``console``.

Invariants: a client's mistake is a 4xx problem naming the field, never a 500; a token is never
logged or shown back; payloads and partner answers leave only for a caller with
``read:payload``, and each such read is audited under the token's name.
"""

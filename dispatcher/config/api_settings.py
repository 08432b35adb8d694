"""The HTTP API's settings, as values (``api:`` in the file): whether a TLS proxy serves it, the
largest request body it reads, and each token's rate limit."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
MIN_MAX_BODY_BYTES = 1024
MAX_MAX_BODY_BYTES = 1024 * 1024 * 1024
"""``api.max_body_bytes``: 1 KiB to 1 GiB."""


@dataclass(frozen=True)
class RateLimit:
    """Each token's requests: ``per_second`` on average, up to ``burst`` at once (a token
    bucket in Redis, shared by every API process)."""

    per_second: float = 200.0
    burst: int = 400


@dataclass(frozen=True)
class ApiSettings:
    https: bool = False
    """Served over https by a TLS proxy in front: ``dispatcher api`` may listen beyond 127.0.0.1
    in production."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """A request body longer than this is refused (413) before it is read to the end."""
    rate_limit: RateLimit | None = field(default_factory=RateLimit)
    """Each token's rate limit; None: ``rate_limit: off``."""

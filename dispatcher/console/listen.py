"""Whether the console may start: someone must be able to sign in, and in production it listens
beyond this machine only behind TLS or a trusted single sign-on proxy. Pure."""

from __future__ import annotations

from ..config import Settings

LOOPBACK = "127.0.0.1"
NO_USER = (
    "the console has no users: add one under console.users in the configuration, with the "
    "password_hash that `dispatcher console hash-password` prints (or configure "
    "console.trusted_proxy and console.proxy_roles)"
)


def start_problem(settings: Settings, host: str) -> str | None:
    """Why the console must not start on ``host``, or None."""
    console = settings.console
    if not console.users and not (console.trusted_proxy and console.proxy_roles):
        return NO_USER
    if settings.environment == "production" and host != LOOPBACK:
        if not console.https and console.trusted_proxy is None:
            return (
                f"in production the console listens only on {LOOPBACK} unless console.https is true "
                f"(a TLS proxy in front) or console.trusted_proxy is set; got --host {host}"
            )
    return None

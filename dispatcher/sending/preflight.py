"""Before anything is sent: would the destination guard let the sender reach each endpoint?

:func:`endpoint_warnings` resolves every endpoint's host as the sender will (``getaddrinfo``)
and words each address the guard (:mod:`.guard`) will refuse, with why and the setting that
opens it::

    endpoint local (http://127.0.0.1:9000): 127.0.0.1 is not allowed (loopback): add it to
    allow_networks, e.g. allow_networks: ["127.0.0.0/8"]

A host that does not resolve is a warning too (``could not resolve partner.example.com``): the
name may exist only where the workers run. An endpoint is named by its scheme, host and port,
never its path or query (they may hold ids). ``dispatcher config check`` prints these; a
worker may log them at start-up. Lookups run at once on daemon threads, all bounded by one
deadline, so a resolver that never answers costs at most ``timeout`` seconds.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from ..config import Endpoint, Settings
from .guard import Network, parse_networks, refusal_message, refusal_reason

RESOLVE_TIMEOUT_SECONDS = 5.0
"""How long every endpoint's lookup may take, together."""

_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")

Resolver = Callable[[str, int], Sequence[str]]
"""A host and port to the addresses they resolve to (raises OSError when they do not)."""


def resolve(host: str, port: int) -> list[str]:
    """The addresses the sender would try for ``host`` (TCP), each once, in the resolver's order."""
    found = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


def endpoint_warnings(
    settings: Settings, timeout: float = RESOLVE_TIMEOUT_SECONDS, resolver: Resolver = resolve
) -> list[str]:
    """One line for every endpoint address the sender will refuse, and every host that does not
    resolve (within ``timeout`` seconds, for all endpoints together), in the endpoints' order."""
    allow = parse_networks(settings.allow_networks)
    targets = {e.name: _target(e) for e in settings.endpoints}
    answers = _resolve_all({t for t in targets.values() if t is not None}, timeout, resolver)
    warnings: list[str] = []
    for endpoint in settings.endpoints:
        target = targets[endpoint.name]
        if target is None:
            continue  # the config refuses a URL without a host; nothing to resolve
        prefix = f"endpoint {_name(endpoint.name)} ({_origin(endpoint.url)})"
        addresses = answers.get(target)
        if isinstance(addresses, str):
            warnings.append(f"{prefix}: {addresses}")
            continue
        warnings.extend(f"{prefix}: {line}" for line in _refusals(addresses or (), allow))
    return warnings


def _refusals(addresses: Sequence[str], allow: Sequence[Network]) -> list[str]:
    lines = []
    for address in addresses:
        reason = refusal_reason(address, allow)
        if reason is not None:
            example = f'allow_networks: ["{suggested_network(address)}"]'
            lines.append(f"{refusal_message(address, reason)}, e.g. {example}")
    return lines


def suggested_network(address: str) -> str:
    """The ``allow_networks`` entry to suggest for a refused address: loopback's whole network
    (``127.0.0.0/8``, ``::1/128``), else the address alone (``10.0.0.7/32``)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 4 and ip in _LOOPBACK_V4:
        return str(_LOOPBACK_V4)
    return f"{ip}/{ip.max_prefixlen}"  # ::1/128 for IPv6's loopback; a mapped one as it is


def _target(endpoint: Endpoint) -> tuple[str, int] | None:
    """The host and port the sender connects to, or None for a URL without a host."""
    try:
        parts = urlsplit(endpoint.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: no user, path, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _name(name: str) -> str:
    return name if name.isprintable() and name.strip() == name and " " not in name else repr(name)


def _resolve_all(
    targets: set[tuple[str, int]], timeout: float, resolver: Resolver
) -> dict[tuple[str, int], Sequence[str] | str]:
    """Each target's addresses, or the warning why there are none; resolved at once on daemon
    threads (a lookup that hangs keeps neither this call nor the process's exit waiting)."""
    answers: dict[tuple[str, int], Sequence[str] | str] = {}

    def look_up(target: tuple[str, int]) -> None:
        try:
            answers[target] = resolver(*target)
        except (OSError, UnicodeError):  # gaierror, or an IDNA name the codec refuses
            answers[target] = f"could not resolve {target[0]}"

    threads = [threading.Thread(target=look_up, args=(t,), daemon=True) for t in sorted(targets)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    found = dict(answers)  # a lookup that answers after the deadline changes nothing here
    for target in targets:
        found.setdefault(target, f"could not resolve {target[0]} within {timeout:g} s")
    return found

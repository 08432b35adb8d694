"""The destination guard: our sender must not be turned against our own network.

Every connection resolves the host itself and connects only to addresses that are public, or
inside an ``allow_networks`` entry. The check is made on the very address the socket connects
to (not on an earlier lookup), so a DNS answer that changes between check and use (rebinding)
cannot slip through. Refused: private, loopback, link-local (cloud metadata 169.254.169.254
included), multicast, reserved, unspecified, shared (100.64/10), and IPv6's equivalents,
IPv4-mapped ones judged by their IPv4 address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import deadline

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_NETWORKS = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class DestinationRefused(OSError):
    """The endpoint resolves only to addresses this sender may not connect to."""


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """``allow_networks`` entries as networks. Raises ValueError naming the bad entry."""
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def is_forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for any address that is not on the public internet."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_forbidden(address.ipv4_mapped)
    if any(address in network for network in METADATA_NETWORKS):
        return True
    return not address.is_global or address.is_multicast


def is_allowed(address: str, allow: Sequence[Network]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip.version == net.version and ip in net for net in allow):
        return True
    return not is_forbidden(ip)


def guarded_create_connection(
    host: str,
    port: int,
    timeout: float | None,
    allow: Sequence[Network],
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """Like ``socket.create_connection``, but only to allowed addresses."""
    refused: list[str] = []
    last_error: OSError | None = None
    for family, socktype, proto, _name, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if not is_allowed(address, allow):
            refused.append(address)
            continue
        sock = socket.socket(family, socktype, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            # The address actually connected to, checked once more.
            if not is_allowed(sock.getpeername()[0], allow):
                raise DestinationRefused(f"connected address {sock.getpeername()[0]} is not allowed")
            return sock
        except DestinationRefused:
            sock.close()
            raise
        except OSError as exc:
            last_error = exc
            sock.close()
    if refused and last_error is None:
        raise DestinationRefused(
            f"{host} resolves to {', '.join(sorted(set(refused)))}: private, loopback, link-local or "
            "otherwise non-public addresses are refused (add the network to allow_networks to permit it)"
        )
    raise last_error or OSError(f"could not resolve {host}")


def _connection_class(base: type[HTTPConnection], allow: tuple[Network, ...]) -> type[HTTPConnection]:
    class GuardedConnection(base):  # type: ignore[misc, valid-type]
        """A connection to allowed addresses only, whose socket the current attempt's deadline
        (:mod:`.deadline`) may cut: a new one when it connects, a kept-alive one when it sends."""

        def request(self, *args: Any, **kwargs: Any) -> Any:
            alarm = deadline.current()
            if alarm is not None:
                alarm.attach(self.sock)
            return super().request(*args, **kwargs)

        def _new_conn(self) -> socket.socket:
            try:
                sock = guarded_create_connection(
                    self._dns_host,
                    self.port,
                    self.timeout,
                    allow,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
                alarm = deadline.current()
                if alarm is not None:
                    alarm.attach(sock)
                return sock
            except DestinationRefused:
                raise
            except TimeoutError as exc:
                from urllib3.exceptions import ConnectTimeoutError

                raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
            except OSError as exc:
                from urllib3.exceptions import NameResolutionError, NewConnectionError

                if isinstance(exc, socket.gaierror):
                    raise NameResolutionError(self.host, self, exc) from exc
                raise NewConnectionError(self, f"failed to establish a new connection: {exc}") from exc

    return GuardedConnection


class GuardedAdapter(HTTPAdapter):
    """An adapter whose connections go only to allowed addresses."""

    def __init__(self, allow: Sequence[Network], **kwargs: object) -> None:
        self.allow = tuple(allow)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        http_conn = _connection_class(HTTPConnection, self.allow)
        https_conn = _connection_class(HTTPSConnection, self.allow)
        http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
        https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


def guard_session(
    session: requests.Session, allow: Sequence[Network], pool_maxsize: int = 10
) -> requests.Session:
    """Mounts the guarded adapter; ``pool_maxsize`` connections are kept per host (one per
    thread that sends at once)."""
    adapter = GuardedAdapter(allow, pool_maxsize=max(10, pool_maxsize))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def is_refusal(exc: BaseException) -> bool:
    """True when a requests error was caused by the guard."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DestinationRefused):
            return True
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
    return False

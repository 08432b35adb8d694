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
from urllib.parse import urlsplit

import requests
import requests.utils
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import deadline

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_NETWORKS = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
_NAMED_NETWORKS = (
    (ipaddress.ip_network("0.0.0.0/8"), "this network"),
    (ipaddress.ip_network("100.64.0.0/10"), "shared address space"),
    (ipaddress.ip_network("192.0.2.0/24"), "documentation"),
    (ipaddress.ip_network("198.51.100.0/24"), "documentation"),
    (ipaddress.ip_network("203.0.113.0/24"), "documentation"),
    (ipaddress.ip_network("2001:db8::/32"), "documentation"),
    (ipaddress.ip_network("198.18.0.0/15"), "benchmarking"),
)
"""Non-public ranges whose name says more than "private" (Python counts most of them private)."""


class DestinationRefused(OSError):
    """The endpoint resolves only to addresses this sender may not connect to. Its message is
    one line: ``127.0.0.1 is not allowed (loopback): add it to allow_networks``."""


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


def address_kind(address: Address) -> str:
    """Why a forbidden address is not public, in a word or two: ``loopback``, ``private``,
    ``link-local``, ``multicast``, ``reserved``, ``unspecified``, ``cloud metadata``,
    ``shared address space``, ``documentation``, ``benchmarking``, ``this network``, else
    ``not public``. An IPv4-mapped IPv6 address is named by its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_kind(address.ipv4_mapped)
    if any(address in network for network in METADATA_NETWORKS):
        return "cloud metadata"
    flags = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
    )
    for flag, kind in flags:
        if flag:
            return kind
    for network, kind in _NAMED_NETWORKS:
        if address.version == network.version and address in network:
            return kind
    return "private" if address.is_private else "not public"


def refusal_reason(address: str | Address, allow: Sequence[Network]) -> str | None:
    """None when the sender may connect to ``address`` (public, or inside an ``allow_networks``
    entry); else why not (:func:`address_kind`). Pure: no lookup, no socket."""
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    return address_kind(ip) if is_forbidden(ip) else None


def refusal_message(address: str, reason: str) -> str:
    """The one line a refused destination is reported with (the attempt's error)."""
    return f"{address} is not allowed ({reason}): add it to allow_networks"


def is_allowed(address: str, allow: Sequence[Network]) -> bool:
    return refusal_reason(address, allow) is None


def guarded_create_connection(
    host: str,
    port: int,
    timeout: float | None,
    allow: Sequence[Network],
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """Like ``socket.create_connection``, but only to allowed addresses."""
    refused: dict[str, str] = {}  # address -> why
    last_error: OSError | None = None
    for family, socktype, proto, _name, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        address = str(sockaddr[0])
        reason = refusal_reason(address, allow)
        if reason is not None:
            refused[address] = reason
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
            peer = str(sock.getpeername()[0])
            reason = refusal_reason(peer, allow)
            if reason is not None:
                raise DestinationRefused(refusal_message(peer, reason))
            return sock
        except DestinationRefused:
            sock.close()
            raise
        except OSError as exc:
            last_error = exc
            sock.close()
    if refused and last_error is None:
        first, *others = sorted(refused)
        more = f" (and {len(others)} more address{'es' if len(others) > 1 else ''})" if others else ""
        raise DestinationRefused(refusal_message(first, refused[first]) + more)
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
            # A connection to a configured proxy is allowed (the partner's address was checked
            # before the request was handed to it: GuardedAdapter.send).
            open_to = ANY_ADDRESS if getattr(self, "proxy", None) is not None else allow
            try:
                sock = guarded_create_connection(
                    self._dns_host,
                    self.port,
                    self.timeout,
                    open_to,
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


ANY_ADDRESS: tuple[Network, ...] = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
"""Every address: what a configured proxy may be."""


def check_destination(host: str, port: int, allow: Sequence[Network]) -> None:
    """Before a request is handed to a proxy (which resolves the host itself): every address
    ``host`` resolves to must be allowed. Raises :class:`DestinationRefused` naming the first
    that is not, or ``OSError`` when the host does not resolve."""
    try:
        found = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"could not resolve {host}") from exc
    for *_, sockaddr in found:
        address = str(sockaddr[0])
        reason = refusal_reason(address, allow)
        if reason is not None:
            raise DestinationRefused(refusal_message(address, reason))


class GuardedAdapter(HTTPAdapter):
    """An adapter whose connections go only to allowed addresses: directly, or through a proxy
    once the partner's address is checked. ``ssl_context`` (a client certificate, a CA) is used
    for every TLS connection to a partner."""

    def __init__(self, allow: Sequence[Network], ssl_context: Any = None, **kwargs: object) -> None:
        self.allow = tuple(allow)
        self.ssl_context = ssl_context
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def _guard(self, manager: Any) -> Any:
        http_conn = _connection_class(HTTPConnection, self.allow)
        https_conn = _connection_class(HTTPSConnection, self.allow)
        http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
        https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
        manager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
        return manager

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self._guard(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if proxy not in self.proxy_manager and self.ssl_context is not None:
            proxy_kwargs["ssl_context"] = self.ssl_context
        return self._guard(super().proxy_manager_for(proxy, **proxy_kwargs))

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        proxies = kwargs.get("proxies") or {}
        if proxies and request.url and requests.utils.select_proxy(request.url, proxies):
            parts = urlsplit(request.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            check_destination(parts.hostname or "", port, self.allow)
        return super().send(request, *args, **kwargs)


def guard_session(
    session: requests.Session, allow: Sequence[Network], pool_maxsize: int = 10, ssl_context: Any = None
) -> requests.Session:
    """Mounts the guarded adapter; ``pool_maxsize`` connections are kept per host (one per
    thread that sends at once)."""
    adapter = GuardedAdapter(allow, ssl_context, pool_maxsize=max(10, pool_maxsize))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

"""How a POST reaches a partner: which session (its TLS settings: a CA bundle, a client
certificate for mutual TLS), whether it verifies, and which proxy.

Endpoints with the same TLS settings share one session, so connections are kept between
deliveries; the session of an endpoint without a client certificate or a CA bundle of its own
is the process's default one. The proxy is chosen per request (:func:`choose_proxy`): the
endpoint's ``proxy``, else ``delivery.proxy`` unless the host is in ``delivery.no_proxy``. Every
session is guarded (:mod:`.guard`): the partner's address is checked before anything is sent,
directly or through the proxy.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from urllib3.util.ssl_ import create_urllib3_context

from ..config import DeliverySettings, Endpoint
from ..config.partner_settings import NO_PROXY, ClientCert
from . import guard


@dataclass(frozen=True)
class Route:
    """What a session is made for: the CA bundle, whether to verify, the client certificate."""

    ca_bundle: str | None
    verify: bool
    client_cert: ClientCert | None = None

    @property
    def own_context(self) -> bool:
        """A client certificate needs its own SSL context (an encrypted key is opened once)."""
        return self.client_cert is not None

    @property
    def requests_verify(self) -> bool | str:
        """``verify`` for requests: the bundle's path (so that only it is trusted, with or without
        a context of the route's own), or whether to verify."""
        if not self.verify or self.ca_bundle is None:
            return self.verify
        return self.ca_bundle


def route_for(endpoint: Endpoint | None, rules: DeliverySettings) -> Route:
    """The route an endpoint's POSTs (and its token requests) take."""
    ca_bundle = (endpoint.ca_bundle if endpoint is not None else None) or rules.ca_bundle
    cert = endpoint.tls_client_cert if endpoint is not None else None
    return Route(ca_bundle, rules.tls_verify, cert)


def ssl_context(route: Route) -> ssl.SSLContext:
    """An SSL context holding the route's CA bundle (or the system's) and client certificate.

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError: the certificate or key does not parse, or the passphrase is wrong.
    """
    context = create_urllib3_context()
    if route.verify:
        if route.ca_bundle:
            context.load_verify_locations(cafile=route.ca_bundle)
        else:
            context.load_default_certs()
    cert = route.client_cert
    if cert is not None:
        password = cert.key_password if cert.key_password is not None else _missing_passphrase
        context.load_cert_chain(cert.cert, cert.key, password=password)
    return context


def _missing_passphrase() -> str:
    """Called by OpenSSL only for an encrypted key with no passphrase configured (without it,
    OpenSSL would ask for one on the terminal and block the worker)."""
    raise ssl.SSLError("tls_client_cert.key is encrypted: set tls_client_cert.key_password")


def host_port(url: str) -> tuple[str, int]:
    """The URL's host (lowercase, without brackets) and port (the scheme's when none is given)."""
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def bypasses(url: str, no_proxy: tuple[str, ...]) -> bool:
    """True when ``url``'s host is in a ``no_proxy`` list (``NO_PROXY``'s rules: ``*``; a host
    and its subdomains, with or without a leading dot; an IP address or network; ``host:port``
    for that port only)."""
    host, port = host_port(url)
    for entry in no_proxy:
        if entry == "*":
            return True
        if _in_network(host, entry.strip("[]")):
            return True
        name, _, only_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if only_port and int(only_port) != port:
            continue
        name = name.lower().lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _has_port(entry: str) -> bool:
    return ":" in entry and entry.count(":") == 1 and entry.rsplit(":", 1)[1].isdigit()


def _in_network(host: str, entry: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


def choose_proxy(url: str, endpoint: Endpoint | None, rules: DeliverySettings) -> str | None:
    """The proxy a request to ``url`` goes through, or None: the endpoint's own ``proxy``
    (``none``: directly), else ``delivery.proxy`` unless ``url``'s host is in ``no_proxy``."""
    own = endpoint.proxy if endpoint is not None else None
    if own is not None:
        return None if own == NO_PROXY else own
    if rules.proxy is None or bypasses(url, rules.no_proxy):
        return None
    return rules.proxy


def proxies_for(url: str, endpoint: Endpoint | None, rules: DeliverySettings) -> dict[str, str]:
    """``proxies`` for requests: the chosen proxy for both schemes, or none."""
    proxy = choose_proxy(url, endpoint, rules)
    return {"http": proxy, "https": proxy} if proxy else {}


class Connections:
    """The sessions of one process, one per :class:`Route`, made on first use and kept."""

    def __init__(self, allow_networks: tuple[str, ...], pool_maxsize: int, default: requests.Session) -> None:
        self.allow = guard.parse_networks(allow_networks)
        self.pool_maxsize = pool_maxsize
        self.default = default
        self._sessions: dict[Route, requests.Session] = {}
        self._lock = threading.Lock()

    def session(self, route: Route) -> requests.Session:
        """The session for ``route``: the default one unless it needs its own SSL context.

        Raises:
            OSError, ssl.SSLError: the route's client certificate cannot be loaded.
        """
        if not route.own_context:
            return self.default
        with self._lock:
            session = self._sessions.get(route)
            if session is None:
                session = requests.Session()
                session.trust_env = False
                session.headers.clear()
                guard.guard_session(session, self.allow, self.pool_maxsize, ssl_context(route))
                self._sessions[route] = session
            return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()

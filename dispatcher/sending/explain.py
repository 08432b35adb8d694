"""A failed attempt in one line a person can act on: ``connection refused by 127.0.0.1:9000``,
``no answer within 30 s``, ``TLS: certificate has expired (partner.example.com)``, ``could not
resolve partner.example.com``, or the destination guard's own refusal.

requests and urllib3 wrap the cause of a failure several times over, and their text quotes the
connection pool and the URL with its path and query (which may hold PHI). :func:`explain` walks
the whole chain for the cause and words it itself, naming the endpoint by ``host:port`` only; an
unknown cause falls back to ``<ExceptionClass>: short text`` without the wrappers' text. Pure: no
I/O, tested with built exceptions as well as real ones.

Through a proxy, a failure that is the proxy's (urllib3's ``ProxyError`` in the chain: it could
not be reached, or it refused the CONNECT) names the proxy by ``host:port``, never its
credentials: ``proxy 127.0.0.1:3128: connection refused``, ``proxy 127.0.0.1:3128 answered 407
to CONNECT (check the proxy's user and password)``. Any other failure of a proxied request is
worded as usual, followed by `` (through proxy 127.0.0.1:3128)``.
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3

from .guard import DestinationRefused

FALLBACK_CHARS = 200
"""An unknown cause's text is kept up to this many characters."""

_WRAPPERS = ("requests.", "urllib3.")
_WRAPPER_TEXT = re.compile(r"ConnectionPool\(|Max retries exceeded|Caused by")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S*")
_SSL_NOISE = re.compile(r"^\[SSL(?:: [A-Z0-9_]+)?\]\s*|\s*\(_ssl\.c:\d+\)$")
_TLS_REASONS = {
    "UNEXPECTED_EOF_WHILE_READING": "the connection was closed during the handshake",
    "WRONG_VERSION_NUMBER": "the server did not answer in TLS (is the endpoint http://?)",
}
_INVALID_REQUEST: tuple[tuple[type[BaseException], str], ...] = (
    (requests.exceptions.MissingSchema, "the endpoint's url has no scheme: start it with https://"),
    (requests.exceptions.InvalidSchema, "the endpoint's url must start with https:// or http://"),
    (requests.exceptions.InvalidURL, "the endpoint's url is not a valid URL"),
    (requests.exceptions.InvalidHeader, "a request header is not valid (check the endpoint's key)"),
)
"""Fixed words: these exceptions quote the URL or the header's value (the key)."""
_NO_HOST = "the endpoint's host"
"""What :func:`endpoint_of` names a URL without a host (or with a port that is not a number)."""
_PROXY_ERRORS = (requests.exceptions.ProxyError, urllib3.exceptions.ProxyError)
_TUNNEL_FAILED = re.compile(r"^Tunnel connection failed: (\d{3})\b")
"""http.client's words (and urllib3's copy of its ``_tunnel``) when a CONNECT is not answered 200."""


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it, each once, nearest first: the arguments it wraps
    (requests), its ``reason`` (urllib3), its ``__cause__`` and ``__context__``."""
    seen: set[int] = set()
    queue: list[object] = [exc]
    while queue:
        current = queue.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue  # urllib3's reason, or ssl's, may be a string
        seen.add(id(current))
        yield current
        queue.extend(getattr(current, "args", ()))
        queue.extend([getattr(current, "reason", None), current.__cause__, current.__context__])


def find(
    exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]
) -> BaseException | None:
    """The nearest exception in ``exc``'s chain that is one of ``kinds``, or None."""
    return next((cause for cause in causes(exc) if isinstance(cause, kinds)), None)


def _timeout(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The nearest of ``kinds`` in the chain that is not urllib3's ``NewConnectionError`` (a
    subclass of its ``ConnectTimeoutError``, raised for a refused connection or DNS too)."""
    return next(
        (
            cause
            for cause in causes(exc)
            if isinstance(cause, kinds) and not isinstance(cause, urllib3.exceptions.NewConnectionError)
        ),
        None,
    )


def is_connect_timeout(exc: BaseException) -> bool:
    return _timeout(exc, (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)) is not None


def is_timeout(exc: BaseException) -> bool:
    """True when the attempt ran out of time, connecting or waiting for (or reading) the answer."""
    return _timeout(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)) is not None


def is_dns_failure(exc: BaseException) -> bool:
    return find(exc, (socket.gaierror, urllib3.exceptions.NameResolutionError)) is not None


def is_refusal(exc: BaseException) -> bool:
    """True when the destination guard refused the address (:mod:`.guard`)."""
    return find(exc, DestinationRefused) is not None


def is_invalid_request(exc: BaseException) -> bool:
    return find(exc, tuple(kind for kind, _ in _INVALID_REQUEST)) is not None


def endpoint_of(url: str) -> tuple[str, str]:
    """The URL's host and ``host:port`` (the scheme's port when none is given), never its path,
    query or user info."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return _NO_HOST, _NO_HOST
    if not host:
        return _NO_HOST, _NO_HOST
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    return host, f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def seconds(value: float) -> str:
    """``30`` for 30.0, ``2.5`` for 2.5."""
    return f"{value:g}"


def explain(
    exc: BaseException, url: str, *, timeout: float, connect_timeout: float, proxy: str | None = None
) -> str:
    """What went wrong, in one line that names the endpoint by ``host:port`` only.

    Args:
        exc: what requests raised for the POST.
        url: the endpoint's URL (only its host and port are quoted).
        timeout: the read timeout, in seconds.
        connect_timeout: the connect timeout, in seconds.
        proxy: the proxy the POST went through, if any (only its host and port are quoted).
    """
    address = endpoint_of(url)[1]
    refusal = find(exc, DestinationRefused)
    if refusal is not None:
        return str(refusal)  # the guard's own words name the address and the setting
    for kind, words in _INVALID_REQUEST:
        if find(exc, kind) is not None:
            return words
    if proxy is None and find(exc, _PROXY_ERRORS) is None:
        return _direct(exc, url, timeout, connect_timeout)
    proxy_host, proxy_address = endpoint_of(proxy or "")
    known = proxy_host != _NO_HOST
    who, proxy_host = (f"proxy {proxy_address}", proxy_host) if known else ("the proxy", "its host")
    return _proxy(exc, who, proxy_host, address, connect_timeout) or (
        f"{_direct(exc, url, timeout, connect_timeout)} (through {who})"
    )


def _direct(exc: BaseException, url: str, timeout: float, connect_timeout: float) -> str:
    """The words of a failure that is not the proxy's."""
    host, address = endpoint_of(url)
    if is_connect_timeout(exc):
        return f"could not connect to {address} within {seconds(connect_timeout)} s"
    if is_timeout(exc):
        return f"no answer within {seconds(timeout)} s"
    if is_dns_failure(exc):
        return _unresolved(exc, host)
    tls = find(exc, ssl.SSLError)
    if tls is not None:
        return _tls(tls, host, address)
    return _connection(exc, address) or _fallback(exc, url)


def _proxy(exc: BaseException, who: str, proxy_host: str, address: str, connect_timeout: float) -> str | None:
    """The words of a failure that is the proxy's (``who``): it could not be reached, or it
    answered the CONNECT for ``address`` with an error. None when urllib3's ``ProxyError`` wraps
    anything else: a connection broken by the proxy or by the partner behind it (urllib3 blames
    the proxy for both)."""
    wrapped = find(exc, urllib3.exceptions.ProxyError)
    if not isinstance(wrapped, urllib3.exceptions.ProxyError):
        return None
    cause = wrapped.original_error
    tunnel = _TUNNEL_FAILED.search(str(cause)) if type(cause) is OSError else None
    if tunnel is not None:
        return _connect_answer(int(tunnel.group(1)), who, address)
    if is_connect_timeout(cause):
        return f"{who}: could not connect within {seconds(connect_timeout)} s"
    if is_dns_failure(cause):
        return f"{who}: {_unresolved(cause, proxy_host)}"
    if find(cause, ConnectionRefusedError) is not None:
        return f"{who}: connection refused"
    tls = find(cause, ssl.SSLError)
    if tls is not None and getattr(tls, "reason", None) == "WRONG_VERSION_NUMBER":
        return f"{who}: TLS: it did not answer in TLS (should the proxy's URL start with http://?)"
    if tls is not None:
        return f"{who}: TLS: {_tls_problem(tls)}"
    if find(cause, urllib3.exceptions.NewConnectionError) is not None:  # no route, unreachable...
        failed = next((c for c in causes(cause) if isinstance(c, OSError) and c.strerror), None)
        words = failed.strerror if isinstance(failed, OSError) and failed.strerror else "could not connect"
        return f"{who}: {words[:1].lower()}{words[1:]}"
    return None


def _connect_answer(status: int, who: str, address: str) -> str:
    """The proxy (``who``) answered ``status``, not 200, to the CONNECT for ``address``."""
    if status in (401, 407):  # tinyproxy answers a wrong password with 401
        return f"{who} answered {status} to CONNECT (check the proxy's user and password)"
    if status == 403:
        return f"{who} refused CONNECT to {address} (403)"
    if status >= 500:
        return f"{who} answered {status} to CONNECT to {address} (it could not reach it)"
    return f"{who} answered {status} to CONNECT to {address}"


def _unresolved(exc: BaseException, host: str) -> str:
    lookup = find(exc, socket.gaierror)
    if isinstance(lookup, socket.gaierror) and lookup.errno == socket.EAI_AGAIN:
        return f"could not resolve {host} (the DNS server did not answer; it may pass)"
    return f"could not resolve {host}"


def _tls(exc: BaseException, host: str, address: str) -> str:
    """A certificate's problem names the host it was checked for; others the address."""
    verifying = isinstance(exc, ssl.SSLCertVerificationError) and bool(exc.verify_message)
    return f"TLS: {_tls_problem(exc)} ({host if verifying else address})"


def _tls_problem(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        problem = exc.verify_message.rstrip(".")
        return f"{problem[:1].lower()}{problem[1:]}"
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason in _TLS_REASONS:
        return _TLS_REASONS[reason]
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    return _SSL_NOISE.sub("", text) or type(exc).__name__


def _connection(exc: BaseException, address: str) -> str | None:
    """A connection that could not be made, or broke: words of our own, or None."""
    if find(exc, ConnectionRefusedError) is not None:
        return f"connection refused by {address}"
    if find(exc, http.client.RemoteDisconnected) is not None:  # a ConnectionResetError too
        return f"{address} closed the connection without answering"
    if find(exc, ConnectionResetError) is not None:
        return f"connection reset by {address}"
    if find(exc, (BrokenPipeError, ConnectionAbortedError)) is not None:
        return f"{address} closed the connection while the request was being sent"
    broken = (requests.exceptions.ChunkedEncodingError, http.client.IncompleteRead)
    if find(exc, broken) is not None:
        return f"{address} closed the connection before the answer was complete"
    if find(exc, requests.exceptions.ContentDecodingError) is not None:
        return f"the answer from {address} could not be decoded (its Content-Encoding)"
    if find(exc, http.client.HTTPException) is not None:  # its text is the partner's bytes
        return f"{address} answered with something that is not HTTP"
    return _os_error(exc, address)


def _os_error(exc: BaseException, address: str) -> str | None:
    failed = next((c for c in causes(exc) if isinstance(c, OSError) and isinstance(c.errno, int)), None)
    if not isinstance(failed, OSError) or failed.errno is None:
        return None
    if failed.errno == errno.EHOSTUNREACH:
        return f"no route to {address}"
    if failed.errno == errno.ENETUNREACH:
        return f"network unreachable for {address}"
    words = failed.strerror or errno.errorcode.get(failed.errno, str(failed.errno))
    return f"could not connect to {address}: {words[:1].lower()}{words[1:]}"


def _fallback(exc: BaseException, url: str) -> str:
    """``<ExceptionClass>: short text`` for the deepest cause that is not a requests or urllib3
    wrapper (else ``exc``), without the wrappers' pool and URL text."""
    chain = list(causes(exc))
    own = [cause for cause in chain if not type(cause).__module__.startswith(_WRAPPERS)]
    cause = own[-1] if own else exc
    text = str(cause)
    if _WRAPPER_TEXT.search(text):
        text = ""
    text = _URL.sub("<url>", text)
    for private in _path_and_query(url):
        text = text.replace(private, "<path>")
    line = f"{type(cause).__name__}: {text}" if text.strip() else type(cause).__name__
    line = " ".join(line.split())
    return line if len(line) <= FALLBACK_CHARS else line[: FALLBACK_CHARS - 3] + "..."


def _path_and_query(url: str) -> list[str]:
    """The parts of ``url`` an error text must not quote, longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    whole = f"{parts.path}?{parts.query}" if parts.query else parts.path
    return [piece for piece in (whole, parts.query, parts.path) if len(piece) > 1]

"""``dispatcher endpoints check NAME``: can the sender reach a partner? Each step does for real
what a delivery does, in one line: ``resolve`` (the guard's verdict on each address), ``connect``
(TCP, or to the proxy and a CONNECT through it), ``tls`` (https://: the handshake with the
endpoint's CA bundle and client certificate, then a GET without an event, where a refusal after
the handshake shows: a TLS 1.3 alert, nginx's 400), ``token`` (oauth2: a fresh token, not the
cache), ``send`` (when asked: the event's seed sample, neither stored nor queued). A failed step
skips the rest. Every line is masked of the endpoint's secrets, the proxy's credentials and the
token. No click here (:mod:`dispatcher.cli.endpoints` prints the steps)."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import SplitResult, unquote, urlsplit

import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from urllib3.util.ssltransport import SSLTransport

from ..config import Endpoint
from ..config.partner_settings import OAuth2Client, proxy_secrets
from ..contract import catalogue, schemas, signing, wrapper
from ..errors import InvalidDispatchArgument
from ..logs import visible
from ..redaction import Masker
from ..runtime import Runtime
from ..sending import attempt, connections, explain, guard, oauth2, preflight
from ..times import format_utc, utcnow

STEPS = ("resolve", "connect", "tls", "token", "send")  # in the order they run; not every endpoint needs all
HEAD_BYTES = 16384
"""A proxy's or a partner's status line and headers are read up to this many bytes."""
PROBE_BODY_BYTES = 4096
"""The body of the partner's answer to the GET is read up to this many bytes (never shown)."""
REFUSED_CERTIFICATE = {
    b"No required SSL certificate was sent": "no client certificate was sent; set tls_client_cert",
    b"The SSL certificate error": "the partner did not accept the client certificate (tls_client_cert)",
}
"""nginx completes the handshake and answers 400 with these words when it refuses a client."""
AFTER_HANDSHAKE = {
    False: "the partner may require a client certificate (tls_client_cert)",
    True: "the partner may not accept the client certificate (tls_client_cert)",
}
"""What a connection broken just after the handshake means (TLS 1.3 refuses a client then)."""


class Step(NamedTuple):
    """One step's result: ``ok`` is None when it was skipped (``ms`` None too)."""

    name: str
    ok: bool | None
    detail: str
    ms: int | None


class StepFailed(Exception):
    """A step that failed; its text is the step's one line."""


def sample_event(endpoint: Endpoint) -> str:
    """The event ``--send`` sends when none is named: the endpoint's first, or order_changed."""
    return "order_changed" if "*" in endpoint.events else endpoint.events[0]


def check_endpoint(runtime: Runtime, name: str, send_event: str | None = None) -> list[Step]:
    """Checks the endpoint named ``name`` step by step; ``send_event`` also sends that event's
    seed sample. Nothing is stored or queued. Raises UnknownEndpoint, UnknownEvent, or
    InvalidDispatchArgument (the endpoint does not subscribe to ``send_event``) first."""
    endpoint = runtime.settings.require_endpoint(name)
    if send_event is not None:
        catalogue.get_event(send_event)
        if not endpoint.subscribes_to(send_event):
            its = ", ".join(endpoint.events)
            problem = f"endpoint {name!r} does not subscribe to {send_event} (its events: {its})"
            raise InvalidDispatchArgument("event", problem)
    probe = Probe(runtime, endpoint, send_event)
    try:
        return probe.run()
    finally:
        probe.close()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _read_head(sock: socket.socket, deadline: float) -> bytes:
    """The status line and headers, a byte at a time (nothing after them is taken). Raises
    StepFailed when the peer closes first or sends more than :data:`HEAD_BYTES`, TimeoutError
    when they are not complete by ``deadline``."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        if time.monotonic() > deadline:
            raise TimeoutError
        if len(head) >= HEAD_BYTES:
            raise StepFailed("the answer's headers are too long")
        chunk = sock.recv(1)
        if not chunk:
            raise StepFailed("the connection was closed before an answer")
        head += chunk
    return bytes(head)


def _status(head: bytes) -> tuple[int, str]:
    """The status code and reason phrase of an HTTP answer's head."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise StepFailed("the answer is not HTTP")
    return int(code), visible(reason.strip())[:100]


def _body(sock: socket.socket, head: bytes, deadline: float) -> bytes:
    """Up to :data:`PROBE_BODY_BYTES` of an answer's body (its Content-Length, when given)."""
    lengths = re.findall(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$", head)
    left = min(PROBE_BODY_BYTES, int(lengths[0])) if lengths else PROBE_BODY_BYTES
    body = b""
    while left > 0 and time.monotonic() < deadline and (chunk := sock.recv(left)):
        body, left = body + chunk, left - len(chunk)
    return body


def _certificate_words(der: bytes | None) -> str:
    """``certificate CN=partner.example, expires 2027-03-01`` for the partner's certificate."""
    try:
        certificate = x509.load_der_x509_certificate(der or b"")
    except ValueError:
        return "a certificate that does not parse"
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common = str(names[0].value) if names else "(none)"
    return f"certificate CN={visible(common)}, expires {certificate.not_valid_after_utc.date()}"


class Probe:
    """The steps of one check, sharing the socket and the token."""

    def __init__(self, runtime: Runtime, endpoint: Endpoint, send_event: str | None) -> None:
        self.settings = runtime.settings
        self.endpoint = endpoint
        self.send_event = send_event
        self.rules = self.settings.delivery_for(endpoint)
        self.route = connections.route_for(endpoint, self.rules)
        self.allow = guard.parse_networks(self.settings.allow_networks)
        self.host, self.port = connections.host_port(endpoint.url)
        self.https = urlsplit(endpoint.url).scheme.lower() == "https"
        self.proxy = connections.choose_proxy(endpoint.url, endpoint, self.rules)
        self.proxy_authorization = self._proxy_authorization()
        secrets = [*runtime.masker_for(endpoint).secrets, *proxy_secrets(self.proxy)]
        self.masker = Masker([*secrets, *([self.proxy_authorization] if self.proxy_authorization else [])])
        self.sock: Any = None
        """The connection the steps share: a socket, an SSLSocket, TLS in an https:// proxy's TLS."""
        self.token: oauth2.Token | None = None
        self.connections: connections.Connections | None = None

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        """The steps this endpoint needs, in order."""
        needed = {"tls": self.https, "token": isinstance(self.endpoint.auth, OAuth2Client)}
        needed["send"] = self.send_event is not None
        every = [self.resolve, self.connect, self.tls, self.fetch_token, self.send]
        return [(name, step) for name, step in zip(STEPS, every, strict=True) if needed.get(name, True)]

    def run(self) -> list[Step]:
        """Runs the steps until one fails; the rest are skipped."""
        done: list[Step] = []
        failed: str | None = None
        for name, step in self.steps():
            if failed is not None:
                done.append(Step(name, None, f"skipped: {failed} failed", None))
                continue
            started = time.perf_counter()
            try:
                detail, ok = step(), True
            except (StepFailed, oauth2.TokenError) as exc:
                detail, ok = str(exc), False
            except TimeoutError:
                detail, ok = f"no answer within {explain.seconds(self.rules.timeout)} s", False
            except (OSError, requests.RequestException) as exc:  # ssl.SSLError is an OSError
                detail, ok = self.explain(exc, self.endpoint.url), False
            ms = int((time.perf_counter() - started) * 1000)
            done.append(Step(name, ok, self.masker.mask(detail), ms))
            failed = failed if ok else name
        return done

    def explain(self, exc: BaseException, url: str) -> str:
        return explain.explain(
            exc, url, timeout=self.rules.timeout, connect_timeout=self.rules.connect_timeout
        )

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.connections is not None:
            self.connections.close()
            self.connections.default.close()

    # --- resolve and connect ----------------------------------------------------------------

    def resolve(self) -> str:
        try:
            addresses = preflight.resolve(self.host, self.port)
        except (OSError, UnicodeError):
            raise StepFailed(f"could not resolve {self.host}") from None
        refused = {a: why for a in addresses if (why := guard.refusal_reason(a, self.allow)) is not None}
        # Directly, a refused address is skipped; a proxy is given the name, so none may be refused.
        if refused and (self.proxy is not None or len(refused) == len(addresses)):
            first, *others = refused
            more = f" (and {len(others)} more)" if others else ""
            raise StepFailed(guard.refusal_message(first, refused[first]) + more)
        allowed = ", ".join(a for a in addresses if a not in refused)
        found = f"{self.host}: allowed" if addresses == [self.host] else f"{self.host} is {allowed}: allowed"
        skipped = ", ".join(f"{a} ({why})" for a, why in refused.items())
        return found + (f"; not used: {skipped}" if skipped else "")

    def _open(self, host: str, port: int, allow: tuple[guard.Network, ...]) -> socket.socket:
        timeout = self.rules.connect_timeout
        try:
            return guard.guarded_create_connection(host, port, timeout, allow)
        except TimeoutError:
            where = _address(host, port)
            raise StepFailed(f"could not connect to {where} within {explain.seconds(timeout)} s") from None

    def connect(self) -> str:
        if self.proxy is None:
            self.sock = self._open(self.host, self.port, self.allow)
            return f"connected to {_address(str(self.sock.getpeername()[0]), self.port)}"
        return self._through_proxy(urlsplit(self.proxy))

    def _proxy_authorization(self) -> str | None:
        """``Basic ...`` of the proxy URL's user and password, or None."""
        parts = urlsplit(self.proxy or "")
        if parts.username is None and parts.password is None:
            return None
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _through_proxy(self, parts: SplitResult) -> str:
        """TCP (and TLS, for an https:// proxy) to the proxy, then CONNECT for an https:// partner."""
        proxy_host = parts.hostname or ""
        proxy = f"proxy {_address(proxy_host, parts.port or 80)}"
        try:  # the proxy is configured: any address is allowed (the partner's was checked)
            self.sock = self._open(proxy_host, parts.port or 80, guard.ANY_ADDRESS)
        except (StepFailed, OSError) as exc:
            words = str(exc) if isinstance(exc, StepFailed) else self.explain(exc, parts.geturl())
            raise StepFailed(f"proxy: {words}") from None
        if parts.scheme == "https":
            context = self._context(connections.Route(self.route.ca_bundle, self.route.verify))
            self.sock = self._wrap(context, self.sock, proxy_host, parts.geturl())
        if not self.https:
            return f"connected to {proxy} (it forwards http:// requests: no CONNECT)"
        target = _address(self.host, self.port)
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", f"User-Agent: {attempt.USER_AGENT}"]
        if self.proxy_authorization:
            lines.append(f"Proxy-Authorization: {self.proxy_authorization}")
        self.sock.settimeout(self.rules.timeout)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        status, reason = _status(_read_head(self.sock, time.monotonic() + self.rules.timeout))
        words = f"CONNECT {target} answered {status} {reason}".rstrip()
        if not 200 <= status < 300:
            hint = "; check the user and password in the proxy's URL" if status in (401, 407) else ""
            raise StepFailed(f"through {proxy}: {words}{hint}")
        return f"through {proxy}: {words}"

    def _context(self, route: connections.Route) -> ssl.SSLContext:
        """The route's SSL context (its CA bundle, its client certificate), verifying or not."""
        try:
            context = connections.ssl_context(route)
        except OSError as exc:  # ssl.SSLError too: a key that does not open
            words = visible(str(getattr(exc, "reason", None) or exc.strerror or type(exc).__name__))
            problem = f"cannot load the client certificate or the CA bundle ({words})"
            raise StepFailed(f"{problem}; dispatcher config check says which and why") from None
        if not route.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _wrap(self, context: ssl.SSLContext, sock: Any, host: str, url: str) -> Any:
        sock.settimeout(self.rules.timeout)
        try:
            if isinstance(sock, ssl.SSLSocket):  # the partner's TLS inside an https:// proxy's
                return SSLTransport(sock, context, server_hostname=host)
            return context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLError as exc:
            raise StepFailed(self.explain(exc, url)) from None

    # --- tls ----------------------------------------------------------------------------------

    def tls(self) -> str:
        assert self.sock is not None  # connect made it
        tls = self._wrap(self._context(self.route), self.sock, self.host, self.endpoint.url)
        self.sock = tls
        version = tls.version() or "TLS"
        certificate = _certificate_words(tls.getpeercert(binary_form=True))
        client = "client certificate offered" if self.route.client_cert else "no client certificate"
        status = self._probe(tls)
        return f"{version}; {certificate}; {client}; a GET (no event) answered {status}"

    def _probe(self, tls: Any) -> int:
        """A GET of the endpoint's URL without an event: a refusal after the handshake shows here."""
        parts = urlsplit(self.endpoint.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        named = f"[{self.host}]" if ":" in self.host else self.host
        host = named if self.port == 443 else f"{named}:{self.port}"
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {attempt.USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        deadline = time.monotonic() + self.rules.timeout
        try:
            tls.sendall(request.encode("utf-8"))
            head = _read_head(tls, deadline)
        except (ssl.SSLError, ConnectionError) as exc:
            broken = AFTER_HANDSHAKE[self.route.client_cert is not None]
            raise StepFailed(f"{self.explain(exc, self.endpoint.url)}; {broken}") from None
        status, _ = _status(head)
        if status in (400, 495, 496):
            body = _body(tls, head, deadline)
            for words, meaning in REFUSED_CERTIFICATE.items():
                if words in body:
                    raise StepFailed(f"the partner answered {status}: {meaning}")
            if status != 400:  # nginx's own codes for a client certificate it refused
                raise StepFailed(f"the partner answered {status}: it refused the client certificate")
        return status

    # --- token and send -----------------------------------------------------------------------

    def session(self) -> requests.Session:
        """The endpoint's guarded session (its own when it has a client certificate)."""
        if self.connections is None:
            allow = self.settings.allow_networks
            self.connections = connections.Connections(allow, 2, attempt.new_session(allow))
        return self.connections.session(self.route)

    def fetch_token(self) -> str:
        client = self.endpoint.auth
        assert isinstance(client, OAuth2Client)  # steps() plans this step for oauth2 only
        token = oauth2.fetch_token(
            self.session(),
            client,
            verify=self.route.requests_verify,
            proxies=connections.proxies_for(client.token_url, self.endpoint, self.rules),
            timeout=self.rules.timeout,
            connect_timeout=self.rules.connect_timeout,
            response_limit=self.rules.response_body_limit,
        )
        self.token = token
        self.masker = Masker([*self.masker.secrets, token.access_token])
        where = explain.endpoint_of(client.token_url)[1]
        return f"a token from {where}, expires in {round(token.expires_at - time.time())} s"

    def sample(self) -> tuple[bytes, str]:
        """The body of the event's seed sample (a new request_id, this sender's source and
        environment), and its request_id."""
        assert self.send_event is not None
        seed = schemas.example_payload(catalogue.get_event(self.send_event))
        request_id = str(uuid.uuid4())
        body = wrapper.build(
            event=self.send_event,
            timestamp=format_utc(utcnow()),
            data=seed["data"],
            source=self.settings.source,
            environment=self.settings.environment,
            request_id=request_id,
            dispatched_by=seed["metadata"]["dispatched_by"],
        )
        key = self.endpoint.key if self.endpoint.include_key_in_body else None
        return wrapper.render(body, retry=False, webhook_key=key)[0], request_id

    def send(self) -> str:
        endpoint, rules = self.endpoint, self.rules
        body, request_id = self.sample()
        headers = attempt.endpoint_headers(endpoint, self.token.access_token if self.token else None)
        if endpoint.signing_secrets:
            keys = endpoint.signing_keys()
            headers.update(signing.signature_headers(request_id, int(time.time()), body, keys))
        outcome = attempt.post(
            self.session(),
            endpoint.url,
            body,
            headers,
            timeout=rules.timeout,
            connect_timeout=rules.connect_timeout,
            response_body_limit=rules.response_body_limit,
            verify=self.route.requests_verify,
            mask=self.masker.mask,
            proxies=connections.proxies_for(endpoint.url, endpoint, rules),
        )
        status = outcome.http_status
        if status is not None and status < 300:
            return f"answered {status} (request_id {request_id})"
        raise StepFailed(outcome.error or f"answered {status}")

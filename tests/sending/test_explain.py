"""A failed attempt's error in one line (dispatcher.sending.explain): against real servers on
127.0.0.1 -- a closed port, a server that never answers, a full accept queue, an expired
certificate, a reset, an answer cut short, bytes that are not HTTP -- an unresolvable name and
the destination guard, then the shapes requests and urllib3 wrap a cause in, built by hand."""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dispatcher.policy.retry import DeliveryOutcome
from dispatcher.sending import attempt, explain, guard
from dispatcher.vocabulary import FailureKind
from tests.partner_servers import MISSING_TINYPROXY, Tinyproxy, tinyproxy_binary

PATH = "/hooks/baremeds?patient=Zo%C3%AB&order=ORD-555"
"""A path and query that must never reach the error text (it may hold PHI)."""
WRAPPER_WORDS = (
    "ConnectionPool",
    "Max retries",
    "Caused by",
    "HTTPConnection",
    "urllib3",
    "/hooks",
    "ORD-555",
)


def post(url: str, allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128"), **kwargs: object) -> DeliveryOutcome:
    session = attempt.new_session(allow)
    kwargs.setdefault("timeout", 0.5)
    kwargs.setdefault("connect_timeout", 0.5)
    try:
        return attempt.post(session, url, b"{}", attempt.build_headers("k-secret"), **kwargs)  # type: ignore[arg-type]
    finally:
        session.close()


def assert_one_clean_line(error: str | None) -> None:
    assert error is not None and "\n" not in error
    for word in WRAPPER_WORDS:
        assert word not in error


# --- servers on 127.0.0.1 ------------------------------------------------------------------


class TcpServer:
    """Accepts connections on 127.0.0.1 and hands each to ``handle`` on its own thread."""

    def __init__(self, handle: Callable[[socket.socket], None], wrap: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handle, self.wrap = handle, wrap
        self.kept: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        self.kept.append(conn)
        try:
            if self.wrap is not None:
                conn = self.wrap.wrap_socket(conn, server_side=True)
                self.kept.append(conn)
            self.handle(conn)
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()
        for conn in self.kept:
            conn.close()


Serve = Callable[..., TcpServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[TcpServer] = []

    def start(handle: Callable[[socket.socket], None], wrap: ssl.SSLContext | None = None) -> TcpServer:
        servers.append(TcpServer(handle, wrap))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def read_request(conn: socket.socket) -> None:
    """Reads the request's head and its body (a close with bytes unread would be a reset)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def expired_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost that expired yesterday, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "expired.pem", directory / "expired.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


# --- real failures ---------------------------------------------------------------------------


def test_a_closed_port_is_connection_refused_by_host_and_port() -> None:
    port = closed_port()
    outcome = post(f"http://127.0.0.1:{port}{PATH}")
    assert outcome.error == f"connection refused by 127.0.0.1:{port}"
    assert outcome.failure == FailureKind.CONNECTION_ERROR


def test_a_server_that_never_answers_is_no_answer_within_the_timeout(serve: Serve) -> None:
    server = serve(lambda conn: read_request(conn))  # reads the request, then says nothing
    outcome = post(f"http://127.0.0.1:{server.port}{PATH}", timeout=0.5)
    assert outcome.error == "no answer within 0.5 s"
    assert outcome.failure == FailureKind.TIMEOUT


def test_a_full_accept_queue_is_could_not_connect_within_the_connect_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once its queue is full, the kernel drops new handshakes
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        outcome = post(f"http://127.0.0.1:{port}{PATH}", connect_timeout=0.3, timeout=2)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert outcome.error == f"could not connect to 127.0.0.1:{port} within 0.3 s"
    assert outcome.failure == FailureKind.TIMEOUT


def test_an_expired_certificate_is_named_with_the_host(serve: Serve, tmp_path: Path) -> None:
    cert, key = expired_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(read_request, wrap=context)
    outcome = post(f"https://localhost:{server.port}{PATH}", verify=str(cert))
    assert outcome.error == "TLS: certificate has expired (localhost)"
    assert outcome.failure == FailureKind.CONNECTION_ERROR


def test_https_to_a_plain_http_server_says_it_did_not_answer_in_tls(serve: Serve) -> None:
    def plain(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    server = serve(plain)
    outcome = post(f"https://127.0.0.1:{server.port}{PATH}")
    assert outcome.error is not None and outcome.error.startswith("TLS: ")
    assert outcome.error.endswith(f"(127.0.0.1:{server.port})")
    assert_one_clean_line(outcome.error)


def test_an_unresolvable_name_is_could_not_resolve_it() -> None:
    outcome = post(f"http://partner.invalid:8080{PATH}")
    assert outcome.error == "could not resolve partner.invalid"
    assert outcome.failure == FailureKind.DNS_ERROR


def test_a_refused_destination_is_the_guards_own_words() -> None:
    port = closed_port()
    with pytest.raises(guard.DestinationRefused) as refused:
        guard.guarded_create_connection("127.0.0.1", port, 1, [])
    outcome = post(f"http://127.0.0.1:{port}{PATH}", allow=())
    assert outcome.error == str(refused.value)
    assert "allow_networks" in outcome.error
    assert outcome.failure == FailureKind.DESTINATION_REFUSED
    assert_one_clean_line(outcome.error)


def test_a_reset_is_connection_reset_by_host_and_port(serve: Serve) -> None:
    def reset(conn: socket.socket) -> None:
        read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    server = serve(reset)
    outcome = post(f"http://127.0.0.1:{server.port}{PATH}")
    assert outcome.error == f"connection reset by 127.0.0.1:{server.port}"
    assert outcome.failure == FailureKind.CONNECTION_ERROR


def test_a_server_that_closes_without_answering(serve: Serve) -> None:
    def close(conn: socket.socket) -> None:
        read_request(conn)
        conn.shutdown(socket.SHUT_RDWR)

    server = serve(close)
    outcome = post(f"http://127.0.0.1:{server.port}{PATH}")
    assert outcome.error == f"127.0.0.1:{server.port} closed the connection without answering"


def test_an_answer_cut_short_says_so(serve: Serve) -> None:
    def cut(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        conn.shutdown(socket.SHUT_RDWR)

    server = serve(cut)
    outcome = post(f"http://127.0.0.1:{server.port}{PATH}")
    assert outcome.error == f"127.0.0.1:{server.port} closed the connection before the answer was complete"
    assert outcome.http_status is None


def test_an_answer_that_is_not_http_never_quotes_its_bytes(serve: Serve) -> None:
    def garbage(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"PATIENT Zoe 1970-01-01\r\n\r\n")
        conn.shutdown(socket.SHUT_RDWR)

    server = serve(garbage)
    outcome = post(f"http://127.0.0.1:{server.port}{PATH}")
    assert outcome.error == f"127.0.0.1:{server.port} answered with something that is not HTTP"


def test_a_redirect_is_an_answer_never_followed(serve: Serve) -> None:
    def redirect(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n"
        )

    server = serve(redirect)
    outcome = post(f"http://127.0.0.1:{server.port}{PATH}")
    assert outcome.http_status == 302 and outcome.failure is None
    assert outcome.error == "HTTP 302 Found"


# --- the shapes requests and urllib3 produce, built ----------------------------------------

URL = "https://partner.example.com/hooks?patient=Zo%C3%AB"


def wrapped(
    reason: Exception, kind: type[requests.RequestException] = requests.ConnectionError
) -> BaseException:
    """``reason`` as requests raises it: ``kind(MaxRetryError(pool, url, reason))``."""
    pool = urllib3.HTTPSConnectionPool("partner.example.com", 443)
    return kind(urllib3.exceptions.MaxRetryError(pool, "/hooks?patient=Zo%C3%AB", reason=reason))


def say(exc: BaseException, url: str = URL) -> str:
    return explain.explain(exc, url, timeout=30, connect_timeout=5)


def test_the_issue_examples_word_for_word() -> None:
    conn = urllib3.connection.HTTPConnection("127.0.0.1", 9000)
    refused = urllib3.exceptions.NewConnectionError(conn, "failed to establish a new connection")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert say(wrapped(refused), "http://127.0.0.1:9000/hooks") == "connection refused by 127.0.0.1:9000"
    read = urllib3.exceptions.ReadTimeoutError(None, "/hooks", "Read timed out. (read timeout=30)")  # type: ignore[arg-type]
    assert say(requests.ReadTimeout(read)) == "no answer within 30 s"
    expired = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    expired.verify_message = "certificate has expired"
    ssl_error = urllib3.exceptions.SSLError(expired)
    assert (
        say(wrapped(ssl_error, requests.exceptions.SSLError))
        == "TLS: certificate has expired (partner.example.com)"
    )
    https = urllib3.connection.HTTPSConnection("partner.example.com")
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    unresolved = urllib3.exceptions.NameResolutionError("partner.example.com", https, gai)
    assert say(wrapped(unresolved)) == "could not resolve partner.example.com"
    words = "127.0.0.1 is not allowed (loopback): add it to allow_networks"
    refusal = requests.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", guard.DestinationRefused(words))
    )
    assert say(refusal, "http://127.0.0.1:9000/hooks") == words


def test_a_connect_timeout_is_not_confused_with_a_refused_connection() -> None:
    conn = urllib3.connection.HTTPSConnection("partner.example.com")
    timed_out = urllib3.exceptions.ConnectTimeoutError(conn, "connection timed out")
    assert (
        say(wrapped(timed_out, requests.ConnectTimeout))
        == "could not connect to partner.example.com:443 within 5 s"
    )
    # urllib3's NewConnectionError is a ConnectTimeoutError too: a refusal is not a timeout
    refused = urllib3.exceptions.NewConnectionError(conn, "[Errno 111] Connection refused")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert say(wrapped(refused)) == "connection refused by partner.example.com:443"
    assert not explain.is_timeout(wrapped(refused))


def test_a_temporary_dns_failure_says_it_may_pass() -> None:
    gai = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert say(requests.ConnectionError(gai)) == (
        "could not resolve partner.example.com (the DNS server did not answer; it may pass)"
    )


@pytest.mark.parametrize(
    "error, words",
    [
        (OSError(113, "No route to host"), "no route to partner.example.com:443"),
        (OSError(101, "Network is unreachable"), "network unreachable for partner.example.com:443"),
        (OSError(13, "Permission denied"), "could not connect to partner.example.com:443: permission denied"),
        (
            BrokenPipeError(32, "Broken pipe"),
            "partner.example.com:443 closed the connection while the request was being sent",
        ),
    ],
)
def test_other_socket_errors_name_host_and_port(error: OSError, words: str) -> None:
    conn = urllib3.connection.HTTPSConnection("partner.example.com")
    failed = urllib3.exceptions.NewConnectionError(conn, f"failed to establish a new connection: {error}")
    failed.__cause__ = error
    assert say(wrapped(failed)) == words


def test_a_body_broken_mid_answer_and_an_undecodable_one() -> None:
    incomplete = http.client.IncompleteRead(b"abc", 97)
    broken = requests.exceptions.ChunkedEncodingError(
        urllib3.exceptions.ProtocolError("Connection broken", incomplete)
    )
    assert say(broken) == "partner.example.com:443 closed the connection before the answer was complete"
    decoding = requests.exceptions.ContentDecodingError(urllib3.exceptions.DecodeError("bad gzip"))
    assert (
        say(decoding) == "the answer from partner.example.com:443 could not be decoded (its Content-Encoding)"
    )


def test_invalid_urls_and_headers_are_fixed_words_that_quote_nothing() -> None:
    assert say(requests.exceptions.MissingSchema(f"Invalid URL {URL!r}: No scheme supplied")).startswith(
        "the endpoint's url has no scheme"
    )
    assert say(requests.exceptions.InvalidSchema(f"No connection adapters were found for {URL!r}")) == (
        "the endpoint's url must start with https:// or http://"
    )
    assert (
        say(requests.exceptions.InvalidURL(f"Invalid URL {URL!r}")) == "the endpoint's url is not a valid URL"
    )
    header = requests.exceptions.InvalidHeader("Invalid leading whitespace in header value: ' k-secret'")
    assert "k-secret" not in say(header)


def test_an_unknown_cause_is_its_class_and_short_text_without_the_wrappers() -> None:
    class PartnerQuirk(Exception):
        pass

    exc = wrapped(urllib3.exceptions.ProtocolError("odd", PartnerQuirk("something odd at " + URL)))
    assert say(exc) == "PartnerQuirk: something odd at <url>"
    bare = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/hooks?patient=Zo%C3%AB"))  # type: ignore[arg-type]
    assert say(bare) == "ConnectionError"
    assert len(say(requests.ConnectionError("x" * 5000))) == explain.FALLBACK_CHARS


def test_the_path_and_query_never_appear_in_any_wording() -> None:
    exc = wrapped(urllib3.exceptions.ProtocolError("odd", ValueError("failed for /hooks?patient=Zo%C3%AB")))
    assert "patient" not in say(exc) and "/hooks" not in say(exc)


def test_causes_walks_args_reason_cause_and_context_each_once_and_skips_strings() -> None:
    inner = ConnectionRefusedError(111, "Connection refused")
    middle = urllib3.exceptions.ProtocolError("Connection aborted.", inner)
    outer = requests.ConnectionError(middle)
    outer.__context__ = outer  # a loop
    tls = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    tls.reason = "WRONG_VERSION_NUMBER"  # ssl's reason is a string, not an exception
    middle.__cause__ = tls
    assert list(explain.causes(outer)) == [outer, middle, inner, tls]


@pytest.mark.parametrize(
    "url, host, address",
    [
        ("https://partner.example.com/hooks?x=1", "partner.example.com", "partner.example.com:443"),
        ("http://user:pass@127.0.0.1:9000/a", "127.0.0.1", "127.0.0.1:9000"),
        ("http://[::1]:8080/", "::1", "[::1]:8080"),
        ("http://host.example:notaport/", "the endpoint's host", "the endpoint's host"),
        ("not a url", "the endpoint's host", "the endpoint's host"),
    ],
)
def test_endpoint_of_is_host_and_port_only(url: str, host: str, address: str) -> None:
    assert explain.endpoint_of(url) == (host, address)


# --- through a proxy: the proxy's failures name the proxy, never its credentials ------------------

PROXY = "http://clinic:pr0xy-pass@proxy.clinic.internal:3128"
"""A proxy URL with credentials: no wording may quote them."""


def via_proxy(error: Exception) -> BaseException:
    """``error`` as requests raises it when the connection to the proxy (or its CONNECT) failed:
    ``ProxyError(MaxRetryError(pool, url, urllib3.ProxyError("Unable to connect to proxy", error)))``."""
    failed = urllib3.exceptions.ProxyError("Unable to connect to proxy", error)
    failed.__cause__ = error
    return wrapped(failed, requests.exceptions.ProxyError)


def say_proxied(exc: BaseException, proxy: str | None = PROXY, url: str = URL) -> str:
    words = explain.explain(exc, url, timeout=30, connect_timeout=5, proxy=proxy)
    assert "pr0xy-pass" not in words and "clinic:" not in words and "/hooks" not in words
    return words


def proxy_connection(
    error: OSError | None, message: str = "failed to establish a new connection"
) -> Exception:
    conn = urllib3.connection.HTTPConnection("proxy.clinic.internal", 3128)
    failed = urllib3.exceptions.NewConnectionError(conn, message)
    failed.__cause__ = error
    return failed


@pytest.mark.parametrize(
    "status, words",
    [
        (
            407,
            "proxy proxy.clinic.internal:3128 answered 407 to CONNECT (check the proxy's user and password)",
        ),
        (
            401,
            "proxy proxy.clinic.internal:3128 answered 401 to CONNECT (check the proxy's user and password)",
        ),
        (403, "proxy proxy.clinic.internal:3128 refused CONNECT to partner.example.com:443 (403)"),
        (
            502,
            "proxy proxy.clinic.internal:3128 answered 502 to CONNECT to partner.example.com:443 (it could not reach it)",
        ),
        (405, "proxy proxy.clinic.internal:3128 answered 405 to CONNECT to partner.example.com:443"),
    ],
)
def test_a_connect_the_proxy_did_not_answer_200_names_the_proxy_and_its_status(
    status: int, words: str
) -> None:
    # http.client's _tunnel (and urllib3's copy of it) raise a bare OSError with these words
    tunnel = OSError(f"Tunnel connection failed: {status} Some Reason")
    assert say_proxied(via_proxy(tunnel)) == words


def test_a_proxy_that_cannot_be_reached_names_the_proxy_not_the_partner() -> None:
    refused = proxy_connection(ConnectionRefusedError(111, "Connection refused"))
    assert say_proxied(via_proxy(refused)) == "proxy proxy.clinic.internal:3128: connection refused"
    no_route = proxy_connection(OSError(113, "No route to host"))
    assert say_proxied(via_proxy(no_route)) == "proxy proxy.clinic.internal:3128: no route to host"
    conn = urllib3.connection.HTTPConnection("proxy.clinic.internal", 3128)
    timed_out = urllib3.exceptions.ConnectTimeoutError(conn, "connection to proxy.clinic.internal timed out")
    assert (
        say_proxied(via_proxy(timed_out)) == "proxy proxy.clinic.internal:3128: could not connect within 5 s"
    )
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    unresolved = urllib3.exceptions.NameResolutionError("proxy.clinic.internal", conn, gai)
    assert say_proxied(via_proxy(unresolved)) == (
        "proxy proxy.clinic.internal:3128: could not resolve proxy.clinic.internal"
    )


def test_tls_to_an_https_proxy_that_speaks_http_suggests_its_url() -> None:
    tls = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    tls.reason = "WRONG_VERSION_NUMBER"
    words = say_proxied(via_proxy(urllib3.exceptions.SSLError(tls)), "https://u:pr0xy-pass@10.0.0.5:3129")
    assert (
        words
        == "proxy 10.0.0.5:3129: TLS: it did not answer in TLS (should the proxy's URL start with http://?)"
    )


def test_any_other_failure_of_a_proxied_post_says_it_went_through_the_proxy() -> None:
    # urllib3 wraps a connection the partner closed behind the tunnel in ProxyError too
    closed = via_proxy(http.client.RemoteDisconnected("Remote end closed connection without response"))
    assert say_proxied(closed) == (
        "partner.example.com:443 closed the connection without answering (through proxy proxy.clinic.internal:3128)"
    )
    expired = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    expired.verify_message = "certificate has expired"
    tls = wrapped(urllib3.exceptions.SSLError(expired), requests.exceptions.SSLError)
    assert (
        say_proxied(tls)
        == "TLS: certificate has expired (partner.example.com) (through proxy proxy.clinic.internal:3128)"
    )
    read = urllib3.exceptions.ReadTimeoutError(None, "/hooks", "Read timed out.")  # type: ignore[arg-type]
    assert (
        say_proxied(requests.ReadTimeout(read))
        == "no answer within 30 s (through proxy proxy.clinic.internal:3128)"
    )


def test_the_guards_refusal_through_a_proxy_is_its_own_words() -> None:
    words = "10.0.0.7 is not allowed (private): add it to allow_networks"
    assert say_proxied(guard.DestinationRefused(words)) == words


def test_a_proxy_error_without_the_proxys_url_says_the_proxy() -> None:
    refused = proxy_connection(ConnectionRefusedError(111, "Connection refused"))
    assert say_proxied(via_proxy(refused), None) == "the proxy: connection refused"
    assert say_proxied(
        via_proxy(OSError("Tunnel connection failed: 407 Proxy Authentication Required")), None
    ) == ("the proxy answered 407 to CONNECT (check the proxy's user and password)")


def test_a_proxy_url_without_a_port_is_named_with_port_80() -> None:
    refused = proxy_connection(ConnectionRefusedError(111, "Connection refused"))
    assert say_proxied(via_proxy(refused), "http://proxy.clinic.internal") == (
        "proxy proxy.clinic.internal:80: connection refused"
    )


# --- through a real proxy on 127.0.0.1 -----------------------------------------------------------


def proxied_post(url: str, proxy: str, **kwargs: object) -> DeliveryOutcome:
    outcome = post(url, proxies={"http": proxy, "https": proxy}, **kwargs)  # type: ignore[arg-type]
    assert_one_clean_line(outcome.error)
    assert "pr0xy-pass" not in str(outcome.error) and "clinic:" not in str(outcome.error)
    return outcome


def test_a_proxy_that_is_not_listening_is_connection_refused_by_the_proxy() -> None:
    port = closed_port()
    for url in (f"https://127.0.0.1:9{PATH}", f"http://127.0.0.1:9{PATH}"):
        outcome = proxied_post(url, f"http://clinic:pr0xy-pass@127.0.0.1:{port}")
        assert outcome.error == f"proxy 127.0.0.1:{port}: connection refused"
        assert outcome.failure == FailureKind.CONNECTION_ERROR


def test_a_proxy_whose_name_does_not_resolve_names_the_proxy() -> None:
    outcome = proxied_post(f"http://127.0.0.1:9{PATH}", "http://clinic:pr0xy-pass@proxy.invalid:3128")
    assert outcome.error == "proxy proxy.invalid:3128: could not resolve proxy.invalid"
    assert outcome.failure == FailureKind.DNS_ERROR


def test_a_proxy_that_never_answers_the_connect(serve: Serve) -> None:
    server = serve(lambda conn: conn.recv(65536))  # reads the CONNECT, then says nothing
    proxy = f"http://clinic:pr0xy-pass@127.0.0.1:{server.port}"
    outcome = proxied_post(f"https://127.0.0.1:9{PATH}", proxy, timeout=0.5, connect_timeout=0.5)
    assert outcome.error == f"no answer within 0.5 s (through proxy 127.0.0.1:{server.port})"
    assert outcome.failure == FailureKind.TIMEOUT


def test_an_https_url_for_a_plain_http_proxy(serve: Serve) -> None:
    def plain(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    server = serve(plain)
    outcome = proxied_post(f"https://127.0.0.1:9{PATH}", f"https://clinic:pr0xy-pass@127.0.0.1:{server.port}")
    assert outcome.error == (
        f"proxy 127.0.0.1:{server.port}: TLS: it did not answer in TLS (should the proxy's URL start with http://?)"
    )


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    """tinyproxy letting CONNECT through to 443 and to ``closed_allowed``, where nothing listens."""
    if tinyproxy_binary() is None:
        pytest.skip(MISSING_TINYPROXY)
    with Tinyproxy(tmp_path / "tinyproxy", connect_ports=[closed_port()]) as server:
        yield server


def test_tinyproxy_refusing_a_connect_port_is_a_403_for_that_destination(tinyproxy: Tinyproxy) -> None:
    port = closed_port()
    outcome = proxied_post(f"https://127.0.0.1:{port}{PATH}", tinyproxy.url)
    assert outcome.error == f"proxy {tinyproxy.address} refused CONNECT to 127.0.0.1:{port} (403)"
    assert tinyproxy.wait_for_requests(1) == [f"CONNECT 127.0.0.1:{port} HTTP/1.0"]


def test_tinyproxy_unable_to_reach_the_partner_is_its_500(tinyproxy: Tinyproxy) -> None:
    [closed] = tinyproxy.connect_ports
    outcome = proxied_post(f"https://127.0.0.1:{closed}{PATH}", tinyproxy.url)
    assert outcome.error == (
        f"proxy {tinyproxy.address} answered 500 to CONNECT to 127.0.0.1:{closed} (it could not reach it)"
    )

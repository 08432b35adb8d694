"""A real OAuth2 token endpoint for tests (the client credentials grant, RFC 6749 4.4), and the
partner behind it, on 127.0.0.1 (HTTPS when given a certificate).

The token endpoint (``token_url``) authenticates each client the way it was registered:
``client_secret_basic`` (HTTP Basic, id and secret form-urlencoded, RFC 6749 2.3.1),
``client_secret_post`` (both in the form) or ``private_key_jwt`` (RFC 7523: the assertion is
verified with the client's public key by PyJWT -- RS384 or ES384, ``aud`` its own token URL,
``iss`` = ``sub`` = client_id, ``exp`` at most 300 s after ``iat``, a ``jti`` never seen before).
It issues opaque random tokens, counts every request (``token_requests``), can expire every
token early (:meth:`TokenServer.expire_all`) and answers scripted errors first when told to
(:meth:`TokenServer.script`).

The partner (``partner_url``, POST) answers 200 to ``Authorization: Bearer <a live token>``, else
401, and records what it received.

Key helpers write RSA and EC P-384 key pairs (and a self-signed certificate for 127.0.0.1) as
PEM files.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    """The private key, PEM (PKCS#8, unencrypted): what the dispatcher's ``private_key`` names."""
    public_pem: bytes


def _write_pair(directory: Path, name: str, key: Any) -> KeyPair:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = Path(directory) / f"{name}.pem"
    path.write_bytes(private)
    path.chmod(0o600)
    return KeyPair(path, public)


def rsa_key_pair(directory: Path, name: str = "rsa", bits: int = 2048) -> KeyPair:
    """An RSA key pair (for RS384); the private key written to ``directory/name.pem``."""
    return _write_pair(directory, name, rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_key_pair(directory: Path, name: str = "ec", curve: ec.EllipticCurve | None = None) -> KeyPair:
    """An EC key pair, P-384 unless told (for ES384); the private key in ``directory/name.pem``."""
    return _write_pair(directory, name, ec.generate_private_key(curve or ec.SECP384R1()))


def self_signed(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), valid for a day: the cert is its
    own CA bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(directory) / f"{name}.crt", Path(directory) / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


# --- the server ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """A scripted answer of the token endpoint: a status, a JSON document or raw bytes, headers,
    and a delay before it."""

    status: int
    json: dict[str, Any] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps(self.json or {}).encode()


@dataclass
class Registered:
    client_id: str
    method: str
    secret: str | None = None
    public_key: Any = None
    algorithm: str | None = None


@dataclass
class Issued:
    client_id: str
    expires_at: float
    scope: str | None
    audience: str | None


@dataclass
class TokenRequest:
    """What the token endpoint received (the test's own secrets: this is a test server)."""

    headers: dict[str, str]
    form: dict[str, str]
    client_id: str | None = None
    status: int = 0
    refused: str | None = None
    """Why it answered an error: the server's own words, for a test's failure message."""
    assertion_header: dict[str, Any] | None = None
    assertion_claims: dict[str, Any] | None = None


@dataclass
class PartnerRequest:
    headers: dict[str, str]
    body: bytes
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class TokenServer:
    """The token endpoint and its partner. ``expires_in`` is the lifetime of issued tokens (None:
    the answer has no ``expires_in``); ``tls`` a (certificate, key) pair for HTTPS."""

    def __init__(self, *, expires_in: int | None = 3600, tls: tuple[Path, Path] | None = None) -> None:
        self.expires_in = expires_in
        self.token_type: str | None = "Bearer"
        self.clients: dict[str, Registered] = {}
        self.issued: dict[str, Issued] = {}
        self.requests: list[TokenRequest] = []
        self.partner_requests: list[PartnerRequest] = []
        self.scripted: list[Answer] = []
        self.seen_jti: set[str] = set()
        self.hold: threading.Event | None = None
        """When set to an Event, token requests wait for it (up to 30 s) before answering."""
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    # --- addresses and counts

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @property
    def partner_url(self) -> str:
        return f"{self.base_url}/partner/hooks"

    @property
    def token_requests(self) -> int:
        with self.lock:
            return len(self.requests)

    # --- set up

    def register_secret(self, client_id: str, secret: str, method: str = "client_secret_basic") -> None:
        """A client that authenticates with ``secret`` by ``method`` (basic or post) only."""
        self.clients[client_id] = Registered(client_id, method, secret=secret)

    def register_key(self, client_id: str, public_pem: bytes, algorithm: str = "RS384") -> None:
        """A ``private_key_jwt`` client whose assertions are verified with ``public_pem``."""
        key = serialization.load_pem_public_key(public_pem)
        self.clients[client_id] = Registered(
            client_id, "private_key_jwt", public_key=key, algorithm=algorithm
        )

    def script(self, *answers: Answer) -> None:
        """The next token requests get these answers, in order (then tokens again)."""
        with self.lock:
            self.scripted.extend(answers)

    def expire_all(self) -> None:
        """Every token issued so far stops working (the partner answers 401 to it)."""
        with self.lock:
            for issued in self.issued.values():
                issued.expires_at = 0.0

    def is_live(self, token: str) -> bool:
        with self.lock:
            issued = self.issued.get(token)
            return issued is not None and issued.expires_at > time.time()

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    # --- the token endpoint

    def answer_token_request(self, headers: dict[str, str], raw: bytes) -> tuple[Answer, TokenRequest]:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        request = TokenRequest(headers, form)
        with self.lock:
            self.requests.append(request)
            scripted = self.scripted.pop(0) if self.scripted else None
        if scripted is not None:
            request.status = scripted.status
            return scripted, request
        if headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return self._refuse(request, 400, "invalid_request", "not a form"), request
        if form.get("grant_type") != "client_credentials":
            return self._refuse(request, 400, "unsupported_grant_type", "grant_type"), request
        problem = self._authenticate(request)
        if problem is not None:
            return self._refuse(request, 401, "invalid_client", problem), request
        return self._issue(request), request

    def _refuse(self, request: TokenRequest, status: int, error: str, why: str) -> Answer:
        request.status, request.refused = status, why
        # a description the client must never quote (it names the client's own secret-ish words)
        return Answer(status, {"error": error, "error_description": f"refused: {why}"})

    def _issue(self, request: TokenRequest) -> Answer:
        token = secrets.token_urlsafe(32)
        lifetime = self.expires_in if self.expires_in is not None else 300
        with self.lock:
            self.issued[token] = Issued(
                request.client_id or "",
                time.time() + lifetime,
                request.form.get("scope"),
                request.form.get("audience"),
            )
        document: dict[str, Any] = {"access_token": token}
        if self.token_type is not None:
            document["token_type"] = self.token_type
        if self.expires_in is not None:
            document["expires_in"] = self.expires_in
        request.status = 200
        return Answer(200, document, headers={"Cache-Control": "no-store"})

    def _authenticate(self, request: TokenRequest) -> str | None:
        """None when the request's client authentication is right, else why not."""
        authorization = request.headers.get("authorization", "")
        form = request.form
        if authorization.lower().startswith("basic "):
            try:
                pair = base64.b64decode(authorization[6:], validate=True).decode()
            except ValueError:
                return "basic credentials do not decode"
            client_id, _, secret = pair.partition(":")
            return self._check_secret(
                request, unquote_plus(client_id), unquote_plus(secret), "client_secret_basic"
            )
        if "client_secret" in form:
            return self._check_secret(
                request, form.get("client_id", ""), form["client_secret"], "client_secret_post"
            )
        if form.get("client_assertion_type") == ASSERTION_TYPE:
            return self._check_assertion(request, form.get("client_assertion", ""))
        return "no client authentication"

    def _check_secret(self, request: TokenRequest, client_id: str, secret: str, method: str) -> str | None:
        request.client_id = client_id
        client = self.clients.get(client_id)
        if client is None or client.method != method:
            return f"unknown client or not registered for {method}"
        if client.secret is None or not secrets.compare_digest(client.secret.encode(), secret.encode()):
            return "wrong secret"
        return None

    def _check_assertion(self, request: TokenRequest, assertion: str) -> str | None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            return f"assertion does not parse: {exc}"
        request.assertion_header, request.assertion_claims = header, claims
        client_id = str(claims.get("iss", ""))
        request.client_id = client_id
        client = self.clients.get(client_id)
        if client is None or client.method != "private_key_jwt":
            return "unknown client or not registered for private_key_jwt"
        if request.form.get("client_id") not in (None, client_id):
            return "form client_id is not the assertion's iss"
        try:
            verified = jwt.decode(
                assertion,
                client.public_key,
                algorithms=[client.algorithm or "RS384"],
                audience=self.token_url,
                issuer=client_id,
                subject=client_id,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return f"assertion refused: {type(exc).__name__}: {exc}"
        if verified["exp"] - verified["iat"] > 300:
            return "assertion lives more than 300 s"
        with self.lock:
            if verified["jti"] in self.seen_jti:
                return "jti replayed"
            self.seen_jti.add(verified["jti"])
        return None

    # --- the partner

    def answer_partner(self, headers: dict[str, str], body: bytes) -> int:
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        status = 200 if scheme.lower() == "bearer" and self.is_live(token) else 401
        with self.lock:
            self.partner_requests.append(PartnerRequest(headers, body, status))
        return status


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?")[0]
            if path == "/oauth2/token":
                if server.hold is not None:
                    server.hold.wait(30)
                answer, _ = server.answer_token_request(headers, raw)
                if answer.delay:
                    time.sleep(answer.delay)
                self._send(answer.status, answer.payload(), answer.headers)
            elif path == "/partner/hooks":
                status = server.answer_partner(headers, raw)
                extra = {} if status == 200 else {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                self._send(status, b'{"ok":true}' if status == 200 else b'{"error":"invalid_token"}', extra)
            else:
                self._send(404, b"{}", {})

        def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass

    return Handler

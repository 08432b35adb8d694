"""Real partner-side servers for the connection tests, independent of pytest: certificates made
with ``cryptography``, Debian's nginx as a partner that asks for a client certificate (and
optionally HTTP Basic), and tinyproxy as the clinic's egress proxy.

Each server runs in the foreground as a child process on a free loopback port, is waited for
with a bounded loop, and is stopped (then killed if it must be) on ``stop()`` or when its
``with`` block ends. :func:`nginx_binary` and :func:`tinyproxy_binary` say whether the binaries
are installed (``scripts/test`` and CI install them: ``apt-get install nginx tinyproxy``);
:data:`MISSING_NGINX` and :data:`MISSING_TINYPROXY` are the skip messages when they are not.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import wait_for

NGINX = "/usr/sbin/nginx"
TINYPROXY = "/usr/bin/tinyproxy"
START_SECONDS = 10.0
"""How long a server may take to listen before its start fails."""
STOP_SECONDS = 5.0
"""How long a server may take to stop before it is killed."""
SERVER_HOSTS = ("127.0.0.1", "127.0.0.2", "::1", "localhost")
"""The names the test server certificate is valid for."""
KEY_PASSWORD = "clinic-key-passphrase"
MISSING_NGINX = "nginx is not installed (scripts/test and CI install it: apt-get install nginx)"
MISSING_TINYPROXY = "tinyproxy is not installed (scripts/test and CI install it: apt-get install tinyproxy)"


def nginx_binary() -> str | None:
    """nginx's path, or None when it is not installed."""
    return NGINX if os.access(NGINX, os.X_OK) else shutil.which("nginx")


def tinyproxy_binary() -> str | None:
    """tinyproxy's path, or None when it is not installed."""
    return TINYPROXY if os.access(TINYPROXY, os.X_OK) else shutil.which("tinyproxy")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at this moment (a server started on it retries on a clash)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerCerts:
    """PEM files for mutual TLS tests. ``ca`` signed the server's and the client's certificates
    (the partner's CA bundle, and the CA nginx trusts for clients); ``other_ca`` signed
    ``other_client_cert`` (a client the partner must refuse)."""

    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_combined: Path
    """The client's certificate and key in one file (``tls_client_cert`` without ``key``)."""
    encrypted_key: Path
    """The client's key, encrypted with :attr:`key_password`."""
    key_password: str
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path
    expired_client_cert: Path
    """Signed by ``ca``, expired yesterday; its key is ``client_key``."""
    client_subject: str
    """The client certificate's subject as nginx's ``$ssl_client_s_dn`` shows it."""


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Baremeds Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: str,
    issuer: _Issued | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    hosts: Iterable[str] = (),
    expired: bool = False,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> _Issued:
    """A certificate for ``subject``: a CA when ``issuer`` is None (self-signed), else a leaf
    for ``usage`` (server or client authentication), valid for ``hosts``."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=30) if expired else now - dt.timedelta(minutes=5)
    end = now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=30)
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.cert.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if issuer is None:
        builder = builder.add_extension(_key_usage(ca=True), critical=True)
    else:
        builder = builder.add_extension(_key_usage(ca=False), critical=True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([usage or ExtendedKeyUsageOID.CLIENT_AUTH]), False
        )
    names = [_general_name(host) for host in hosts]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _Issued(builder.sign(signer, hashes.SHA256()), key)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _cert_pem(issued: _Issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(issued: _Issued, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    return issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def make_certs(
    directory: Path, hosts: Iterable[str] = SERVER_HOSTS, key_password: str = KEY_PASSWORD
) -> PartnerCerts:
    """Writes a test CA, a server certificate for ``hosts``, client certificates (good, from
    another CA, expired) and their keys (one encrypted with ``key_password``) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _issue("Partner Test CA", None)
    other_ca = _issue("Unknown Test CA", None)
    server = _issue("partner.test", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=hosts)
    client = _issue("clinic-17", ca)
    stranger = _issue("clinic-17", other_ca)
    expired = _issue("clinic-17", ca, expired=True, key=client.key)
    files = {
        "ca.pem": _cert_pem(ca),
        "other-ca.pem": _cert_pem(other_ca),
        "server.pem": _cert_pem(server),
        "server.key": _key_pem(server),
        "client.pem": _cert_pem(client),
        "client.key": _key_pem(client),
        "client-combined.pem": _cert_pem(client) + _key_pem(client),
        "client-encrypted.key": _key_pem(client, key_password),
        "other-client.pem": _cert_pem(stranger),
        "other-client.key": _key_pem(stranger),
        "expired-client.pem": _cert_pem(expired),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return PartnerCerts(
        directory=directory,
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_combined=directory / "client-combined.pem",
        encrypted_key=directory / "client-encrypted.key",
        key_password=key_password,
        other_ca=directory / "other-ca.pem",
        other_client_cert=directory / "other-client.pem",
        other_client_key=directory / "other-client.key",
        expired_client_cert=directory / "expired-client.pem",
        client_subject="CN=clinic-17,O=Baremeds Test",
    )


# --- processes ---------------------------------------------------------------------------------


class ServerProcess:
    """A server run in the foreground as a child process (in its own process group), started
    on a free port and retried on another when the port was taken meanwhile."""

    name = "server"
    attempts = 3

    def __init__(self, directory: Path, host: str) -> None:
        self.directory = directory.resolve()
        self.host = host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def write_config(self) -> None:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def diagnostics(self) -> str:
        """What the server said about a failed start (its error log)."""
        return ""

    def start(self) -> Self:
        """Starts the server and waits until it listens. Raises RuntimeError with its log when
        it cannot start."""
        for _ in range(self.attempts):
            self.port = free_port(self.host)
            self.write_config()
            output = (self.directory / f"{self.name}.out").open("wb")
            with output:
                self.process = subprocess.Popen(
                    self.command(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
                )
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"{self.name} did not start on {self.host}: {self.diagnostics()[-2000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if self.is_ready():
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Asks the server to stop (SIGTERM), kills its process group if it has not within
        :data:`STOP_SECONDS`, and reaps it. Safe to call twice."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # not reaped yet: the group is still its own
            process.wait(STOP_SECONDS)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def listening(self) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.settimeout(0.5)
            return probe.connect_ex((self.host, self.port)) == 0


# --- nginx: the partner ------------------------------------------------------------------------

_LOG_FORMAT = (
    '{"method":"$request_method","uri":"$request_uri","status":"$status",'
    '"webhook_key":"$http_x_webhook_key","remote_user":"$remote_user",'
    '"authorization":"$http_authorization","partner_account":"$http_x_partner_account",'
    '"client_verify":"$ssl_client_verify","client_dn":"$ssl_client_s_dn",'
    '"user_agent":"$http_user_agent","content_type":"$content_type","body":"$request_body"}'
)
"""One JSON object a line: what the tests check about each request nginx received."""

_NGINX_CONF = """\
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
lock_file {dir}/nginx.lock;
error_log {dir}/error.log info;
events {{ worker_connections 128; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    log_format partner escape=json '{log_format}';
    server {{
        listen unix:{answer_socket};
        access_log off;
        location / {{
            default_type application/json;
            return {status} '{body}';
        }}
    }}
    server {{
        listen {listen};
        server_name partner.test;
{tls}        access_log {dir}/access.log partner;
        client_max_body_size 10m;
        client_body_buffer_size 1m;
        location / {{
{auth}            proxy_pass http://unix:{answer_socket}:;
        }}
    }}
}}
"""


class NginxPartner(ServerProcess):
    """Debian's nginx as a partner: TLS with the test server certificate, a client certificate
    required (``verify_client="on"``; ``"optional"`` or ``"off"``) from ``certs.ca``, HTTP
    Basic when ``basic_auth=(user, password)``. Every POST (any path) that passes is answered
    ``status`` with ``body`` (JSON), by a second nginx server on a unix socket behind it, so
    the checks run first and the request body is read. Each request is a JSON line in
    ``access.log`` (:meth:`requests`)."""

    name = "nginx"

    def __init__(
        self,
        directory: Path,
        certs: PartnerCerts | None,
        *,
        host: str = "127.0.0.1",
        verify_client: str = "on",
        basic_auth: tuple[str, str] | None = None,
        status: int = 200,
        body: str = '{"ok":true}',
    ) -> None:
        super().__init__(directory, host)
        directory = self.directory
        if "'" in body or "\\" in body:
            raise ValueError("NginxPartner body: no quotes or backslashes")
        self.certs, self.verify_client, self.basic_auth = certs, verify_client, basic_auth
        self.status, self.body = status, body
        self.access_log = directory / "access.log"
        self.error_log = directory / "error.log"
        self._socket_dir: str | None = None

    @property
    def tls(self) -> bool:
        return self.certs is not None

    @property
    def url(self) -> str:
        """``https://host:port/hooks`` (``http://`` when started without certificates)."""
        return self.url_for("/hooks")

    def url_for(self, path: str = "/hooks", host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{url_host(host or self.host)}:{self.port}{path}"

    def command(self) -> list[str]:
        conf = str(self.directory / "nginx.conf")
        binary = nginx_binary() or NGINX
        return [binary, "-p", str(self.directory), "-e", str(self.error_log), "-c", conf, "-g", "daemon off;"]

    def write_config(self) -> None:
        (self.directory / "nginx.pid").unlink(missing_ok=True)
        if self._socket_dir is None:  # a unix socket's path has at most 107 bytes: a short one
            self._socket_dir = tempfile.mkdtemp(prefix="nginx-")
        (self.directory / "body").mkdir(exist_ok=True)
        conf = _NGINX_CONF.format(
            dir=self.directory,
            log_format=_LOG_FORMAT,
            answer_socket=f"{self._socket_dir}/answer.sock",
            status=self.status,
            body=self.body,
            listen=f"{url_host(self.host)}:{self.port}" + (" ssl" if self.tls else ""),
            tls=self._tls_lines(),
            auth=self._auth_lines(),
        )
        (self.directory / "nginx.conf").write_text(conf)

    def _tls_lines(self) -> str:
        if self.certs is None:
            return ""
        lines = [
            f"ssl_certificate {self.certs.server_cert};",
            f"ssl_certificate_key {self.certs.server_key};",
        ]
        if self.verify_client != "off":
            lines += [f"ssl_client_certificate {self.certs.ca};", f"ssl_verify_client {self.verify_client};"]
        return "".join(f"        {line}\n" for line in lines)

    def _auth_lines(self) -> str:
        if self.basic_auth is None:
            return ""
        user, password = self.basic_auth
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        htpasswd = self.directory / "htpasswd"
        htpasswd.write_text(f"{user}:{{SHA}}{digest}\n")
        return f'            auth_basic "partner";\n            auth_basic_user_file {htpasswd};\n'

    def is_ready(self) -> bool:
        # nginx writes its pid file once its sockets listen: a port someone else took meanwhile
        # answers a probe, but nginx then exits without one
        pid = _read(self.directory / "nginx.pid").strip()
        return self.process is not None and pid == str(self.process.pid) and self.listening()

    def diagnostics(self) -> str:
        return _read(self.error_log) + _read(self.directory / "nginx.out")

    def stop(self) -> None:
        super().stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def requests(self) -> list[dict[str, str]]:
        """The requests nginx logged so far (its access log), oldest first: ``method``, ``uri``,
        ``status``, ``webhook_key``, ``remote_user``, ``authorization``, ``partner_account``,
        ``client_verify`` (``SUCCESS``, ``NONE``, ``FAILED:...``), ``client_dn``,
        ``user_agent``, ``content_type``, ``body``; a header that was absent is ``""``."""
        return [json.loads(line) for line in _read(self.access_log).splitlines() if line.strip()]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        """The logged requests once there are at least ``count`` (nginx writes a request's line
        just after it answered); fails the test after ``timeout`` seconds."""
        return list(
            wait_for(lambda: len(found := self.requests()) >= count and found, timeout, message="nginx's log")
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


# --- tinyproxy: the egress proxy ---------------------------------------------------------------


class Tinyproxy(ServerProcess):
    """tinyproxy as the clinic's egress proxy, in the foreground on a free loopback port:
    forwards http:// requests, tunnels CONNECT to port 443 and ``connect_ports`` only (403
    otherwise), asks for ``credentials=(user, password)`` when given (407 without any; 401
    for wrong ones: tinyproxy 1.11's way). Its log (``tinyproxy.log``, LogLevel Info) has a
    ``Connect (file descriptor N)`` line per connection and a ``Request ...`` line per request."""

    name = "tinyproxy"

    def __init__(
        self,
        directory: Path,
        *,
        connect_ports: Iterable[int] = (),
        credentials: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(directory, host)
        self.connect_ports = tuple(connect_ports)
        self.credentials = credentials
        self.log_path = self.directory / "tinyproxy.log"

    @property
    def url(self) -> str:
        """``http://host:port``, without credentials."""
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, as an error names the proxy."""
        return f"{url_host(self.host)}:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        """The proxy's URL with ``user:password@`` (quoted)."""
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@{url_host(self.host)}:{self.port}"

    def command(self) -> list[str]:
        return [tinyproxy_binary() or TINYPROXY, "-d", "-c", str(self.directory / "tinyproxy.conf")]

    def write_config(self) -> None:
        self.log_path.unlink(missing_ok=True)
        lines = [
            f"Port {self.port}",
            f"Listen {self.host}",
            "Timeout 30",
            "MaxClients 64",
            "Allow 127.0.0.0/8",
            "Allow ::1",
            f'LogFile "{self.log_path}"',
            "LogLevel Info",
            "DisableViaHeader Yes",
        ]
        lines += [f"ConnectPort {port}" for port in (443, *self.connect_ports)]
        if self.credentials is not None:
            lines.append("BasicAuth {} {}".format(*self.credentials))
        (self.directory / "tinyproxy.conf").write_text("\n".join(lines) + "\n")

    def is_ready(self) -> bool:
        return "Starting main loop" in self.log()

    def diagnostics(self) -> str:
        return self.log() + _read(self.directory / "tinyproxy.out")

    def log(self) -> str:
        """The whole log so far."""
        return _read(self.log_path)

    def requests(self) -> list[str]:
        """Each request line the proxy read, oldest first: ``CONNECT 127.0.0.1:8443 HTTP/1.1``,
        ``POST http://127.0.0.1:9000/hooks HTTP/1.1``."""
        marker = "]: Request (file descriptor "
        return [line.split("): ", 1)[1] for line in self.log().splitlines() if marker in line]

    def connections(self) -> int:
        """How many connections the proxy accepted."""
        return self.log().count("]: Connect (file descriptor ")

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[str]:
        """:meth:`requests` once there are at least ``count``; fails the test after ``timeout``."""
        return list(
            wait_for(
                lambda: len(found := self.requests()) >= count and found, timeout, message="tinyproxy's log"
            )
        )

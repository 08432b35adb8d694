"""The credential files ``config check`` reads: real PEM files written in ``tmp_path`` (RSA and EC
keys, matching and mismatched certificates, encrypted keys, expired and soon-expiring
certificates, files that cannot be read), each problem one line naming the setting and never
the passphrase."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from dispatcher.config import DeliverySettings, Endpoint, Settings
from dispatcher.config.partner_settings import ClientCert, OAuth2Client, OAuth2Method
from dispatcher.sending.credentials import endpoint_credential_problems, settings_credential_problems

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
PASSPHRASE = "correct-horse-31337"
RULES = DeliverySettings()


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key, password: str | None = None, traditional: bool = False) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    form = (
        serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, form, encryption)


def cert_pem(
    key, not_after: dt.datetime, not_before: dt.datetime | None = None, cn: str = "clinic-17"
) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or not_after - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def problems(endpoint: Endpoint, rules: DeliverySettings = RULES) -> tuple[list[str], list[str]]:
    return endpoint_credential_problems(endpoint, rules, NOW)


def with_cert(cert: str, key: str | None = None, password: str | None = None) -> Endpoint:
    return Endpoint(
        name="pharmacy", url="https://p.example/h", tls_client_cert=ClientCert(cert, key, password)
    )


@pytest.fixture
def client(tmp_path: Path) -> tuple[str, str, rsa.RSAPrivateKey]:
    """A client certificate valid for a year, and its RSA key."""
    key = rsa_key()
    cert = write(tmp_path, "client.crt", cert_pem(key, NOW + dt.timedelta(days=365)))
    return cert, write(tmp_path, "client.key", key_pem(key)), key


def test_a_matching_certificate_and_key_have_no_problem(client) -> None:
    cert, key, _ = client
    assert problems(with_cert(cert, key)) == ([], [])


def test_an_ec_certificate_and_its_key_in_one_file(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    combined = write(tmp_path, "both.pem", cert_pem(key, NOW + dt.timedelta(days=90)) + key_pem(key))
    assert problems(with_cert(combined)) == ([], [])
    alone = write(tmp_path, "alone.pem", cert_pem(key, NOW + dt.timedelta(days=90)))
    assert problems(with_cert(alone)) == (
        ["endpoint pharmacy: tls_client_cert.key: not set, and tls_client_cert.cert holds no private key"],
        [],
    )


def test_a_key_of_another_certificate_does_not_match(tmp_path: Path, client) -> None:
    cert, _, _ = client
    other = write(tmp_path, "other.key", key_pem(ec.generate_private_key(ec.SECP384R1())))
    assert problems(with_cert(cert, other))[0] == [
        "endpoint pharmacy: tls_client_cert: the certificate and the key do not match"
    ]


def test_an_encrypted_key_opens_with_the_right_passphrase_only(tmp_path: Path, client) -> None:
    cert, _, key = client
    for traditional in (False, True):  # PKCS#8 and OpenSSL's own "Proc-Type: 4,ENCRYPTED"
        locked = write(tmp_path, f"locked-{traditional}.key", key_pem(key, PASSPHRASE, traditional))
        assert problems(with_cert(cert, locked, PASSPHRASE)) == ([], [])
        wrong = problems(with_cert(cert, locked, "not-the-passphrase-4242"))
        assert wrong == (
            ["endpoint pharmacy: tls_client_cert.key: the passphrase (key_password) does not open it"],
            [],
        )
        assert problems(with_cert(cert, locked)) == (
            ["endpoint pharmacy: tls_client_cert.key: is encrypted; set tls_client_cert.key_password"],
            [],
        )


def test_a_passphrase_for_a_key_that_has_none_is_a_warning(client) -> None:
    cert, key, _ = client
    errors, warnings = problems(with_cert(cert, key, PASSPHRASE))
    assert errors == []
    assert warnings == [
        "endpoint pharmacy: tls_client_cert.key_password: is set but the key is not encrypted; remove it"
    ]
    assert all(PASSPHRASE not in line for line in errors + warnings)


def test_an_expired_certificate_is_an_error_and_one_expiring_soon_a_warning(tmp_path: Path) -> None:
    key = rsa_key()
    key_path = write(tmp_path, "k.pem", key_pem(key))
    expired = write(tmp_path, "old.crt", cert_pem(key, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    assert problems(with_cert(expired, key_path)) == (
        ["endpoint pharmacy: tls_client_cert.cert: expired on 2026-01-01"],
        [],
    )
    soon = write(tmp_path, "soon.crt", cert_pem(key, dt.datetime(2026, 12, 20, 8, tzinfo=dt.UTC)))
    assert problems(with_cert(soon, key_path)) == (
        [],
        ["endpoint pharmacy: tls_client_cert.cert: expires on 2026-12-20 (in 13 days)"],
    )
    later = write(tmp_path, "later.crt", cert_pem(key, NOW + dt.timedelta(days=31)))
    assert problems(with_cert(later, key_path)) == ([], [])
    future = write(
        tmp_path,
        "future.crt",
        cert_pem(key, NOW + dt.timedelta(days=400), not_before=NOW + dt.timedelta(days=2)),
    )
    assert problems(with_cert(future, key_path))[0] == [
        "endpoint pharmacy: tls_client_cert.cert: not valid until 2026-12-09"
    ]


def test_files_that_are_not_what_they_should_be(tmp_path: Path, client) -> None:
    cert, key, _ = client
    text = write(tmp_path, "notes.txt", b"hello\n")
    assert problems(with_cert(text, key))[0] == [
        "endpoint pharmacy: tls_client_cert.cert: holds no PEM certificate"
    ]
    assert problems(with_cert(cert, text))[0] == [
        "endpoint pharmacy: tls_client_cert.key: not a PEM private key"
    ]
    assert problems(with_cert(cert, str(tmp_path)))[0] == [
        "endpoint pharmacy: tls_client_cert.key: is a directory, not a file"
    ]
    assert problems(with_cert(str(tmp_path / "missing.crt"), key))[0] == [
        "endpoint pharmacy: tls_client_cert.cert: not found"
    ]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer for ever: it must not be opened
    assert problems(with_cert(cert, str(fifo)))[0] == [
        "endpoint pharmacy: tls_client_cert.key: is not a regular file"
    ]
    damaged = write(
        tmp_path, "damaged.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    assert problems(with_cert(cert, damaged))[0] == [
        "endpoint pharmacy: tls_client_cert.key: does not parse as a private key (damaged, or a kind TLS cannot use)"
    ]


def _problems_as_nobody(endpoint: Endpoint) -> tuple[list[str], list[str]]:
    """``problems(endpoint)`` in a child process running as ``nobody`` (root reads any file)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, check, report, and leave without pytest's cleanup
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, json.dumps(problems(endpoint)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    errors, warnings = json.loads(answer)
    return errors, warnings


def test_a_file_the_process_may_not_read_says_permission_denied() -> None:
    # Outside pytest's base directory, which is closed to other users: only the key is closed.
    shared = Path(tempfile.mkdtemp(prefix="credentials-"))
    try:
        shared.chmod(0o755)
        key = rsa_key()
        cert = write(shared, "client.crt", cert_pem(key, NOW + dt.timedelta(days=365)))
        closed = write(shared, "client.key", key_pem(key))
        os.chmod(closed, 0o000)
        endpoint = with_cert(cert, closed)
        found = _problems_as_nobody(endpoint) if os.geteuid() == 0 else problems(endpoint)
        assert found == (["endpoint pharmacy: tls_client_cert.key: not readable (permission denied)"], [])
    finally:
        shutil.rmtree(shared)


def jwt_endpoint(path: str, algorithm: str = "RS384") -> Endpoint:
    client = OAuth2Client(
        token_url="https://auth.p.example/token",
        client_id="clinic-17",
        method=OAuth2Method.PRIVATE_KEY_JWT,
        private_key=path,
        key_id="k1",
        algorithm=algorithm,
    )
    return Endpoint(name="pharmacy", url="https://p.example/h", auth=client)


@pytest.mark.parametrize(
    ("key", "algorithm", "problem"),
    [
        (lambda: rsa_key(), "RS384", None),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384", None),
        (
            lambda: ec.generate_private_key(ec.SECP384R1()),
            "RS384",
            "an EC key cannot sign RS384; set algorithm: ES384",
        ),
        (lambda: rsa_key(), "ES384", "an RSA key cannot sign ES384; set algorithm: RS384"),
        (
            lambda: ec.generate_private_key(ec.SECP256R1()),
            "ES384",
            "ES384 needs an EC key on the P-384 curve (secp384r1); this one is on P-256",
        ),
        (
            lambda: ec.generate_private_key(ec.SECP256R1()),
            "RS384",
            "an EC P-256 key cannot sign RS384; use an RSA key, or an EC P-384 key with algorithm: ES384",
        ),
        (lambda: rsa_key(1024), "RS384", "a 1024-bit RSA key is too weak; use at least 2048 bits"),
        (
            lambda: ed25519.Ed25519PrivateKey.generate(),
            "RS384",
            "an Ed25519 key cannot sign RS384; use an RSA key (RS384) or an EC P-384 key (ES384)",
        ),
    ],
)
def test_the_jwt_key_must_fit_its_algorithm(tmp_path: Path, key, algorithm: str, problem: str | None) -> None:
    path = write(tmp_path, "jwt.pem", key_pem(key()))
    expected = [f"endpoint pharmacy: auth.oauth2.private_key: {problem}"] if problem else []
    assert problems(jwt_endpoint(path, algorithm)) == (expected, [])


def test_the_jwt_key_must_be_readable_and_unencrypted(tmp_path: Path) -> None:
    locked = write(tmp_path, "jwt.pem", key_pem(rsa_key(), PASSPHRASE))
    assert problems(jwt_endpoint(locked))[0] == [
        "endpoint pharmacy: auth.oauth2.private_key: is encrypted; private_key_jwt needs a key without a passphrase"
    ]
    certificate = write(tmp_path, "cert.pem", cert_pem(rsa_key(), NOW + dt.timedelta(days=90)))
    assert problems(jwt_endpoint(certificate))[0] == [
        "endpoint pharmacy: auth.oauth2.private_key: not a PEM private key"
    ]


def test_a_ca_bundle_must_hold_a_certificate(tmp_path: Path) -> None:
    good = write(tmp_path, "ca.pem", cert_pem(rsa_key(), NOW + dt.timedelta(days=900), cn="Partner CA"))
    empty = write(tmp_path, "empty.pem", b"# no certificates here\n")
    endpoint = Endpoint(name="pharmacy", url="https://p.example/h", ca_bundle=empty)
    assert problems(endpoint) == (
        ["endpoint pharmacy: ca_bundle: holds no certificate (PEM: -----BEGIN CERTIFICATE-----)"],
        [],
    )
    fine = Endpoint(name="pharmacy", url="https://p.example/h", ca_bundle=good)
    assert problems(fine) == ([], [])
    unused = problems(fine, DeliverySettings(tls_verify=False))
    assert unused == ([], ["endpoint pharmacy: ca_bundle: not used while delivery.tls_verify is false"])


def test_every_endpoint_and_the_delivery_bundle_are_checked(tmp_path: Path, client) -> None:
    cert, key, _ = client
    empty = write(tmp_path, "empty.pem", b"")
    locked = write(tmp_path, "locked.key", key_pem(rsa_key(), PASSPHRASE))
    settings = Settings(
        delivery=DeliverySettings(ca_bundle=empty),
        endpoints=(
            Endpoint(name="lab", url="https://lab.example/h"),
            with_cert(cert, key),
            Endpoint(
                name="payer",
                url="https://payer.example/h",
                tls_client_cert=ClientCert(cert, locked, "wrong-passphrase-777"),
            ),
        ),
    )
    errors, warnings = settings_credential_problems(settings, NOW)
    assert errors == [
        "delivery.ca_bundle: holds no certificate (PEM: -----BEGIN CERTIFICATE-----)",
        "endpoint payer: tls_client_cert.key: the passphrase (key_password) does not open it",
    ]
    assert warnings == []
    assert not any("wrong-passphrase-777" in line for line in errors)

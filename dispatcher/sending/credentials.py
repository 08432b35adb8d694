"""Before anything is sent: can each endpoint's connection credentials be used?

``dispatcher config check`` reads every file an endpoint's connection names -- the client
certificate and its key (``tls_client_cert``), the CA bundle (``ca_bundle``, and
``delivery.ca_bundle``), the ``private_key_jwt`` key (``auth.oauth2.private_key``) -- and says,
one line each, what would stop a POST or a token request::

    endpoint pharmacy: tls_client_cert.key: the passphrase (key_password) does not open it
    endpoint pharmacy: tls_client_cert: the certificate and the key do not match
    endpoint pharmacy: auth.oauth2.private_key: an EC key cannot sign RS384; set algorithm: ES384

A certificate that expires within :data:`EXPIRY_WARNING_DAYS` is a warning; one that has
expired is an error. A line names the setting and never quotes a secret (a passphrase, a key)
or a file's contents. Pure apart from reading the files (cryptography parses them).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..config import DeliverySettings, Endpoint, Settings
from ..config.partner_settings import ClientCert, OAuth2Client, OAuth2Method

EXPIRY_WARNING_DAYS = 30
"""A certificate that expires within this many days is a warning."""
MAX_FILE_BYTES = 1 << 20
"""A PEM file is a few kilobytes; a larger one is not the file it should be."""
MIN_RSA_BITS = 2048
"""The token request refuses a smaller RSA key (:mod:`.oauth2`); so does the check."""

_KEY_BLOCK = re.compile(
    rb"-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY)-----.*?-----END \1-----", re.DOTALL
)
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

Problems = tuple[list[str], list[str]]
"""(errors, warnings)."""


class Unusable(Exception):
    """A file or key that cannot be used; its text is the line's end (no setting, no secret)."""


def read_file(path: str) -> bytes:
    """A credential file's bytes. Only a regular file is opened (a FIFO would block).

    Raises:
        Unusable: missing, a directory, not a regular file, unreadable, or too large.
    """
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise Unusable("is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise Unusable("is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise Unusable(f"is larger than {MAX_FILE_BYTES // 1024} KiB: not a PEM file")
        with open(path, "rb") as file:
            return file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise Unusable(_unreadable(exc)) from None


def _unreadable(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "not found"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "not readable (permission denied)"
    if exc.errno == errno.EISDIR:
        return "is a directory, not a file"
    words = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
    return f"not readable ({words[:1].lower()}{words[1:]})"


def _certificates(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


def private_key(data: bytes, password: str | None, needs_password: str) -> tuple[Any, list[str]]:
    """The first PEM private key in ``data``, and warnings about its passphrase.

    Args:
        password: the passphrase configured for it, if any.
        needs_password: what to say when it is encrypted and ``password`` is None.

    Raises:
        Unusable: no PEM private key, encrypted without a passphrase, a wrong passphrase, or a
            key that does not parse.
    """
    block = _KEY_BLOCK.search(data)
    if block is None:
        raise Unusable("not a PEM private key")
    pem = block.group(0)
    encrypted = block.group(1) == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in pem
    warnings = []
    if not encrypted and password is not None:
        warnings.append("is set but the key is not encrypted; remove it")
    if encrypted and password is None:
        raise Unusable(needs_password)
    secret = password.encode() if encrypted and password is not None else None
    try:
        return serialization.load_pem_private_key(pem, password=secret), warnings
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise Unusable("the passphrase (key_password) does not open it") from None
        raise Unusable("does not parse as a private key (damaged, or a kind TLS cannot use)") from None


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def expiry_problems(certificate: x509.Certificate, now: datetime) -> Problems:
    """An error when ``certificate`` has expired or is not valid yet; a warning when it expires
    within :data:`EXPIRY_WARNING_DAYS`."""
    not_after = certificate.not_valid_after_utc
    not_before = certificate.not_valid_before_utc
    if not_after <= now:
        return [f"expired on {not_after.date().isoformat()}"], []
    if not_before > now:
        return [f"not valid until {not_before.date().isoformat()}"], []
    days = (not_after.date() - now.date()).days
    if days > EXPIRY_WARNING_DAYS:
        return [], []
    when = "today" if days == 0 else f"in {days} day{'' if days == 1 else 's'}"
    return [], [f"expires on {not_after.date().isoformat()} ({when})"]


def client_cert_problems(cert: ClientCert, now: datetime) -> Problems:
    """``tls_client_cert``: each line starts with the setting (``tls_client_cert.cert: ...``)."""
    errors: list[str] = []
    warnings: list[str] = []
    try:
        cert_data = read_file(cert.cert)
    except Unusable as exc:
        return [f"tls_client_cert.cert: {exc}"], []
    chain = _certificates(cert_data)
    if not chain:
        errors.append("tls_client_cert.cert: holds no PEM certificate")
    else:
        expired, soon = expiry_problems(chain[0], now)
        errors += [f"tls_client_cert.cert: {line}" for line in expired]
        warnings += [f"tls_client_cert.cert: {line}" for line in soon]
    try:
        key_data = read_file(cert.key) if cert.key is not None else cert_data
        if cert.key is None and _KEY_BLOCK.search(cert_data) is None:
            raise Unusable("not set, and tls_client_cert.cert holds no private key")
        key, notes = private_key(
            key_data, cert.key_password, "is encrypted; set tls_client_cert.key_password"
        )
    except Unusable as exc:
        return errors + [f"tls_client_cert.key: {exc}"], warnings
    warnings += [f"tls_client_cert.key_password: {note}" for note in notes]
    if chain and _public_der(chain[0].public_key()) != _public_der(key.public_key()):
        errors.append("tls_client_cert: the certificate and the key do not match")
    return errors, warnings


def ca_bundle_problems(path: str) -> list[str]:
    """A CA bundle: readable, and holding at least one PEM certificate (each line without the
    setting's name)."""
    try:
        data = read_file(path)
    except Unusable as exc:
        return [str(exc)]
    if not _certificates(data):
        return ["holds no certificate (PEM: -----BEGIN CERTIFICATE-----)"]
    return []


def signing_key_problems(client: OAuth2Client) -> list[str]:
    """``auth.oauth2.private_key`` of a ``private_key_jwt`` client: readable, unencrypted, and
    a key that can sign the configured algorithm (each line without the setting's name)."""
    if client.method is not OAuth2Method.PRIVATE_KEY_JWT or not client.private_key:
        return []
    try:
        data = read_file(client.private_key)
        key, _ = private_key(data, None, "is encrypted; private_key_jwt needs a key without a passphrase")
    except Unusable as exc:
        return [str(exc)]
    problem = algorithm_problem(key, client.algorithm)
    return [problem] if problem else []


def algorithm_problem(key: Any, algorithm: str) -> str | None:
    """Why ``key`` cannot sign a JWT with ``algorithm`` (RS384: RSA, at least 2048 bits; ES384:
    EC on P-384), saying what to set; None when it can."""
    if isinstance(key, rsa.RSAPrivateKey):
        if algorithm == "ES384":
            return "an RSA key cannot sign ES384; set algorithm: RS384"
        if key.key_size < MIN_RSA_BITS:
            return f"a {key.key_size}-bit RSA key is too weak; use at least {MIN_RSA_BITS} bits"
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = _CURVES.get(key.curve.name, key.curve.name)
        if key.curve.name == "secp384r1":
            return "an EC key cannot sign RS384; set algorithm: ES384" if algorithm == "RS384" else None
        if algorithm == "ES384":
            return f"ES384 needs an EC key on the P-384 curve (secp384r1); this one is on {curve}"
        return (
            f"an EC {curve} key cannot sign RS384; use an RSA key, or an EC P-384 key with algorithm: ES384"
        )
    kind = type(key).__name__.lstrip("_").removesuffix("PrivateKey") or "this"
    return f"an {kind} key cannot sign {algorithm}; use an RSA key (RS384) or an EC P-384 key (ES384)"


def endpoint_credential_problems(endpoint: Endpoint, rules: DeliverySettings, now: datetime) -> Problems:
    """Every problem with ``endpoint``'s credential files, as (errors, warnings), each one line
    ``endpoint NAME: <setting>: ...``. ``rules`` are its delivery settings; ``now`` is aware UTC."""
    errors: list[str] = []
    warnings: list[str] = []
    if endpoint.tls_client_cert is not None:
        found, noted = client_cert_problems(endpoint.tls_client_cert, now)
        errors += found
        warnings += noted
    if endpoint.ca_bundle is not None:
        errors += [f"ca_bundle: {line}" for line in ca_bundle_problems(endpoint.ca_bundle)]
        if not rules.tls_verify:
            warnings.append("ca_bundle: not used while delivery.tls_verify is false")
    if isinstance(endpoint.auth, OAuth2Client):
        errors += [f"auth.oauth2.private_key: {line}" for line in signing_key_problems(endpoint.auth)]
    prefix = f"endpoint {endpoint.name}: "
    return [prefix + line for line in errors], [prefix + line for line in warnings]


def settings_credential_problems(settings: Settings, now: datetime) -> Problems:
    """:func:`endpoint_credential_problems` of every endpoint, after ``delivery.ca_bundle``'s."""
    errors: list[str] = []
    warnings: list[str] = []
    if settings.delivery.ca_bundle is not None:
        errors += [f"delivery.ca_bundle: {line}" for line in ca_bundle_problems(settings.delivery.ca_bundle)]
    for endpoint in settings.endpoints:
        found, noted = endpoint_credential_problems(endpoint, settings.delivery_for(endpoint), now)
        errors += found
        warnings += noted
    return errors, warnings

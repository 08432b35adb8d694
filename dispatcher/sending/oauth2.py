"""One OAuth2 client credentials token (RFC 6749 4.4) from a partner's token endpoint.

The token endpoint is treated like a partner: the session is the guarded one, redirects are
not followed, the whole request ends by the same deadline as a POST (:mod:`.deadline`) and the
answer is read up to a limit. The client authenticates with ``client_secret_basic``,
``client_secret_post`` or ``private_key_jwt`` (RFC 7523, as SMART Backend Services requires).

A failure is a :class:`TokenError` whose text is one line starting ``oauth2:``. It quotes only
the JSON ``error`` code of an error answer, never its description or body (the partner's words),
and is masked of the client secret and the assertion. Caching and sharing tokens between
workers is :mod:`.tokens`' job.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..config.partner_settings import OAuth2Client, OAuth2Method
from ..redaction import Masker
from . import attempt, deadline, explain
from .attempt import USER_AGENT

DEFAULT_EXPIRES_IN = 300
"""A token's lifetime in seconds when the token endpoint does not say (no ``expires_in``)."""
ASSERTION_SECONDS = 300
"""A client assertion expires this long after it is made (RFC 7523; SMART allows at most 5 min)."""
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MIN_RSA_BITS = 2048

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
"""An access token must be visible ASCII: it is sent in the partner's ``Authorization`` header."""


class TokenError(Exception):
    """No token could be had. Its text is one line: ``oauth2: token endpoint answered 401
    invalid_client``, ``oauth2: token endpoint unreachable (connection refused by ...)``."""


@dataclass(frozen=True)
class Token:
    """An access token and when it expires and should be refreshed (epoch seconds)."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_at: float

    def due(self, now: float) -> bool:
        """Time to fetch the next one (it still works until :meth:`expired`)."""
        return now >= self.refresh_at

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    @classmethod
    def issued(cls, access_token: str, expires_in: float, now: float) -> Token:
        """A token issued at ``now`` for ``expires_in`` seconds."""
        expires_at = now + expires_in
        return cls(access_token, expires_at, expires_at - refresh_margin(expires_in))


def refresh_margin(expires_in: float) -> float:
    """How long before expiry a token is refreshed: 60 s, or 10 % of a lifetime shorter than
    600 s (so a 60 s token is refreshed after 54 s, not at once)."""
    return min(60.0, 0.1 * expires_in)


# --- private_key_jwt ----------------------------------------------------------------------------

_keys: dict[str, tuple[tuple[int, int], Any]] = {}
_keys_lock = threading.Lock()


def _load_key(path: str) -> Any:
    """The private key in the PEM file ``path``, parsed once per (path, mtime, size)."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise TokenError(f"oauth2: private key: cannot read {path}: {exc.strerror or exc}") from None
    version = (stat.st_mtime_ns, stat.st_size)
    with _keys_lock:
        cached = _keys.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        with open(path, "rb") as pem:
            key = serialization.load_pem_private_key(pem.read(), password=None)
    except OSError as exc:
        raise TokenError(f"oauth2: private key: cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        problem = f"{path} is not an unencrypted PEM private key"
        raise TokenError(f"oauth2: private key: {problem}") from None
    with _keys_lock:
        _keys[path] = (version, key)
    return key


def _kind(key: Any) -> str:
    """A key's kind in words: ``an RSA key``, ``an EC P-256 key``, ``a key of type Ed25519PrivateKey``."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"an EC {curves.get(key.curve.name, key.curve.name)} key"
    return f"a key of type {type(key).__name__}"


def _check_key(key: Any, algorithm: str, path: str) -> None:
    """Refuses a key that cannot sign with ``algorithm``, naming both."""
    needs = {"RS384": "an RSA key", "ES384": "an EC P-384 key"}
    if algorithm not in needs:
        raise TokenError(f"oauth2: private key: algorithm {algorithm} is not one of RS384, ES384")
    if _kind(key) != needs[algorithm]:
        problem = f"{path} is {_kind(key)}; algorithm {algorithm} needs {needs[algorithm]}"
        raise TokenError(f"oauth2: private key: {problem}")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        problem = f"{path} is a {key.key_size}-bit RSA key; use at least {MIN_RSA_BITS} bits"
        raise TokenError(f"oauth2: private key: {problem}")


def client_assertion(client: OAuth2Client, now: float, jti: str | None = None) -> str:
    """The RFC 7523 client assertion: a JWT signed with the client's private key, ``iss`` =
    ``sub`` = client_id, ``aud`` = token_url, valid :data:`ASSERTION_SECONDS`, a new ``jti``
    each call (unless given), and ``kid`` and ``alg`` in its header.

    Raises:
        TokenError: the key cannot be read, does not parse, or does not fit the algorithm.
    """
    if not client.private_key:
        raise TokenError("oauth2: private key: private_key_jwt needs auth.oauth2.private_key")
    key = _load_key(client.private_key)
    _check_key(key, client.algorithm, client.private_key)
    issued = int(now)
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": client.token_url,
        "iat": issued,
        "exp": issued + ASSERTION_SECONDS,
        "jti": jti or uuid.uuid4().hex,
    }
    headers = {"kid": client.key_id} if client.key_id else {}
    return jwt.encode(claims, key, algorithm=client.algorithm, headers=headers)


# --- the request ------------------------------------------------------------------------------


def _request(client: OAuth2Client, now: float) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The form, the headers, and the secrets they hold (to mask)."""
    form = {"grant_type": "client_credentials"}
    if client.scope:
        form["scope"] = client.scope
    if client.audience:
        form["audience"] = client.audience
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    secrets = list(client.secrets())
    if client.method == OAuth2Method.PRIVATE_KEY_JWT:
        assertion = client_assertion(client, now)
        form |= {"client_id": client.client_id, "client_assertion_type": ASSERTION_TYPE}
        form["client_assertion"] = assertion
        return form, headers, [*secrets, assertion]
    if client.client_secret is None:
        raise TokenError(f"oauth2: {client.method} needs auth.oauth2.client_secret")
    if client.method == OAuth2Method.CLIENT_SECRET_POST:
        form |= {"client_id": client.client_id, "client_secret": client.client_secret}
        return form, headers, secrets
    headers["Authorization"] = client.basic_header()
    return form, headers, [*secrets, headers["Authorization"].split(" ", 1)[1]]


def fetch_token(
    session: requests.Session,
    client: OAuth2Client,
    *,
    verify: bool | str,
    proxies: dict[str, str],
    timeout: float,
    connect_timeout: float,
    response_limit: int = 65536,
    clock: Callable[[], float] = time.time,
) -> Token:
    """Asks the token endpoint for a token (the client credentials grant), once.

    Args:
        session: a guarded session (:mod:`.guard`), for the endpoint's route.
        verify, proxies: requests' own, for the endpoint's route and proxy.
        timeout, connect_timeout: as a POST's; the whole request ends within their sum.
        response_limit: the answer is read up to this many bytes.
        clock: epoch seconds; the token's times count from when it was asked for.

    Raises:
        TokenError: no token, in one line with no secret in it.
    """
    now = float(clock())
    form, headers, secrets = _request(client, now)
    mask = Masker(secrets)
    limit = timeout + connect_timeout
    options: dict[str, Any] = {"headers": headers, "verify": verify, "proxies": proxies}
    options["timeout"] = (connect_timeout, timeout)
    answer: tuple[int, bytes, bool] | BaseException
    with deadline.deadline(limit) as alarm:
        try:
            answer = _exchange(session, client.token_url, urlencode(form), response_limit, options)
        except (requests.RequestException, OSError) as exc:
            answer = exc
    if alarm.fired:
        raise TokenError(f"oauth2: token endpoint gave no complete answer within {explain.seconds(limit)} s")
    if isinstance(answer, BaseException):
        proxy = proxies.get("https" if client.token_url.lower().startswith("https:") else "http")
        words = explain.explain(
            answer, client.token_url, timeout=timeout, connect_timeout=connect_timeout, proxy=proxy
        )
        raise TokenError(mask(f"oauth2: token endpoint unreachable ({words})")) from None
    try:
        return _token_of(*answer, response_limit, now)
    except TokenError as exc:
        raise TokenError(mask(str(exc))) from None


def _exchange(
    session: requests.Session, url: str, body: str, limit: int, options: dict[str, Any]
) -> tuple[int, bytes, bool]:
    """The POST, never following a redirect, and the bounded read of its answer: (status,
    body, whether it was cut). ``options``: the headers, timeouts, ``verify`` and ``proxies``."""
    with session.post(url, data=body, allow_redirects=False, stream=True, **options) as response:
        read, oversized = attempt.read_limited(response, limit)
        return response.status_code, read, oversized


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return document if isinstance(document, dict) else None


def _token_of(status: int, body: bytes, oversized: bool, limit: int, now: float) -> Token:
    """The token in a 2xx answer, or the TokenError saying why there is none."""
    if 300 <= status < 400:
        raise TokenError(f"oauth2: token endpoint answered {status} (redirects are not followed)")
    if status >= 400 or status < 200:
        document = None if oversized else _json_object(body)
        code = document.get("error") if document else None
        quoted = f" {code}" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""
        raise TokenError(f"oauth2: token endpoint answered {status}{quoted}")
    if oversized:
        raise TokenError(f"oauth2: token endpoint's answer is larger than {limit} bytes")
    document = _json_object(body)
    if document is None:
        raise TokenError("oauth2: token endpoint's answer is not a JSON object")
    access_token = document.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenError("oauth2: token endpoint's answer has no access_token")
    if not _HEADER_SAFE.fullmatch(access_token):
        raise TokenError("oauth2: token endpoint's access_token is not visible ASCII (cannot be sent)")
    token_type = document.get("token_type")
    if token_type is not None and (not isinstance(token_type, str) or token_type.lower() != "bearer"):
        raise TokenError("oauth2: token endpoint's answer has a token_type that is not Bearer")
    return Token.issued(access_token, _expires_in(document.get("expires_in")), now)


def _expires_in(value: object) -> float:
    """``expires_in`` in seconds: a positive number (or numeric string); absent, the default."""
    if value is None:
        return float(DEFAULT_EXPIRES_IN)
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            seconds = None
    if seconds is None or not seconds > 0 or seconds == float("inf"):
        raise TokenError("oauth2: token endpoint's expires_in is not a positive number of seconds")
    return seconds

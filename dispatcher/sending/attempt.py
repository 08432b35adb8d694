"""One HTTP attempt and its outcome. No policy here: :mod:`dispatcher.policy.retry` decides what follows."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import requests

from ..config import Endpoint
from ..config.partner_settings import BasicAuth, BearerAuth
from ..policy.retry import DeliveryOutcome
from ..vocabulary import FailureKind
from . import deadline, explain, guard

try:
    __version__ = version("baremeds-webhook-dispatcher")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

USER_AGENT = f"Baremeds-Webhook-Dispatcher/{__version__}"
STORED_BODY_BYTES = 4096
"""An answer's body is stored (sealed, as PHI) up to this many bytes."""
REASON_CHARS = 200
"""A partner's reason phrase is kept up to this many characters."""
ERROR_CHARS = 1000
"""An attempt's error text, whoever wrote it, is kept up to this many characters."""


def new_session(allow_networks: tuple[str, ...] | list[str] = (), pool_maxsize: int = 10) -> requests.Session:
    """A session that keeps connections between jobs, never reads proxy settings from the
    environment, and connects only to public addresses or ``allow_networks``. ``pool_maxsize``
    is how many threads send with it at once."""
    session = requests.Session()
    session.trust_env = False
    session.headers.clear()
    return guard.guard_session(session, guard.parse_networks(allow_networks), pool_maxsize)


def build_headers(
    key: str, extra: tuple[tuple[str, str], ...] = (), authorization: str | None = None
) -> dict[str, str]:
    """A POST's headers: the seed's three, an endpoint's ``headers`` (which may not replace
    them: the configuration refuses those names) and its ``Authorization``, when it has one."""
    headers = {"Content-Type": "application/json", "X-Webhook-Key": key, "User-Agent": USER_AGENT}
    headers.update(extra)
    if authorization is not None:
        headers["Authorization"] = authorization
    return headers


def endpoint_headers(endpoint: Endpoint, token: str | None = None) -> dict[str, str]:
    """The headers of a POST to ``endpoint``: :func:`build_headers` with its key, its
    ``headers`` and the ``Authorization`` its ``auth`` gives (an OAuth2 endpoint's ``token``,
    fetched by the caller)."""
    auth = endpoint.auth
    if isinstance(auth, BasicAuth | BearerAuth):
        authorization: str | None = auth.header()
    else:
        authorization = f"Bearer {token}" if token is not None else None
    return build_headers(endpoint.key, endpoint.headers, authorization)


def _cut(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, ending in ``...`` when it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def answer_error(status: int, reason: str | None, mask: Callable[[str], str] = str) -> str | None:
    """The error text of an answer: None for 1xx and 2xx, else ``HTTP <status> <reason phrase>``,
    the phrase (the partner's words, PHI like its body) masked then cut to :data:`REASON_CHARS`."""
    if status < 300:
        return None
    phrase = _cut(mask(reason or "").strip(), REASON_CHARS)
    return _cut(f"HTTP {status} {phrase}".strip(), ERROR_CHARS)


def _decode(raw: bytes, encoding: str | None) -> str:
    try:
        return raw.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def read_limited(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """An answer's body up to ``limit`` bytes, and whether there was more (a partner's or a
    token endpoint's: neither can make the sender read without end)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    connect_timeout: float,
    response_body_limit: int = 65536,
    verify: bool | str = True,
    mask: Callable[[str], str] = str,
    proxies: dict[str, str] | None = None,
) -> DeliveryOutcome:
    """POSTs once, without following redirects, and classifies what happened. A POST that got
    no answer is worded in one line by :func:`.explain.explain` (``connection refused by
    127.0.0.1:9000``, ``no answer within 30 s``...): the endpoint's host and port, never its path.

    ``mask`` takes the endpoint's secrets out of the answer's text and of any error text (before
    either is cut short), so a partner echoing its key, or an error quoting a header, never
    puts a secret in the log.

    The whole attempt -- connecting, sending, the status line, the headers and the body read --
    ends within ``timeout + connect_timeout`` of its start, however slowly the partner answers
    (:mod:`.deadline`); one cut short is a ``timeout``. ``proxies``: requests' (:mod:`.connections`).
    """
    started = time.perf_counter()
    limit = timeout + connect_timeout
    answer: tuple[int, str | None, str, str | None] | BaseException
    with deadline.deadline(limit) as alarm:
        try:
            answer = _exchange(
                session, url, body, headers, (connect_timeout, timeout), response_body_limit, verify, proxies
            )
        except (requests.RequestException, OSError) as exc:
            answer = exc
    ms = int((time.perf_counter() - started) * 1000)
    if alarm.fired:
        cut = f"no complete answer within {explain.seconds(limit)} s (timeout + connect_timeout)"
        return DeliveryOutcome(None, FailureKind.TIMEOUT, cut, None, ms)
    proxy = (proxies or {}).get("https" if url.lower().startswith("https:") else "http")
    if isinstance(answer, BaseException):
        words = explain.explain(answer, url, timeout=timeout, connect_timeout=connect_timeout, proxy=proxy)
        error = _cut(mask(words), ERROR_CHARS)
        return DeliveryOutcome(None, failure_kind(answer), error, None, ms)
    status, reason, text, retry_after = answer
    if status == 407 and proxy:  # only a proxy answers 407: the partner never saw the POST
        return DeliveryOutcome(None, FailureKind.CONNECTION_ERROR, proxy_refusal(proxy), None, ms)
    return DeliveryOutcome(status, None, answer_error(status, reason, mask), mask(text), ms, retry_after)


def proxy_refusal(proxy: str) -> str:
    """A proxy's 407 to a plain-http POST, naming the proxy by ``host:port`` only."""
    return f"proxy {explain.endpoint_of(proxy)[1]} answered 407 (check the proxy's user and password)"


def _exchange(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeouts: tuple[float, float],
    response_body_limit: int,
    verify: bool | str,
    proxies: dict[str, str] | None = None,
) -> tuple[int, str | None, str, str | None]:
    """The POST and the bounded read of its answer: (status, reason, stored text, Retry-After)."""
    with session.post(
        url,
        data=body,
        headers=headers,
        timeout=timeouts,
        allow_redirects=False,
        stream=True,
        verify=verify,
        proxies=proxies or {},
    ) as response:
        raw, _ = read_limited(response, response_body_limit)
        text = _decode(raw[:STORED_BODY_BYTES], response.encoding)
        return response.status_code, response.reason, text, response.headers.get("Retry-After")


def failure_kind(exc: BaseException) -> FailureKind:
    """What kind of failure a POST that got no answer was (the policy decides on it; the words
    are :func:`.explain.explain`'s)."""
    if explain.is_refusal(exc):
        return FailureKind.DESTINATION_REFUSED
    if explain.is_invalid_request(exc):
        return FailureKind.INVALID_REQUEST
    if explain.is_timeout(exc):
        return FailureKind.TIMEOUT
    if explain.is_dns_failure(exc):
        return FailureKind.DNS_ERROR
    # refused, reset, TLS, broken mid-answer (ChunkedEncodingError...): may pass
    return FailureKind.CONNECTION_ERROR

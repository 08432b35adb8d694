"""One HTTP attempt and its outcome. No policy here: :mod:`dispatcher.retry` decides what follows."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import requests
import urllib3

from . import guard

try:
    __version__ = version("baremeds-webhook-dispatcher")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

USER_AGENT = f"Baremeds-Webhook-Dispatcher/{__version__}"
STORED_BODY_BYTES = 4096


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt produced.

    ``failure`` is None when a response arrived; otherwise one of ``timeout``,
    ``connection_error``, ``dns_error``, ``invalid_request``.
    """

    http_status: int | None
    failure: str | None
    error: str | None
    response_body: str | None
    duration_ms: int
    retry_after: str | None = None


def new_session(allow_networks: tuple[str, ...] | list[str] = (), pool_maxsize: int = 10) -> requests.Session:
    """A session that keeps connections between jobs, never reads proxy settings from the
    environment, and connects only to public addresses or ``allow_networks``. ``pool_maxsize``
    is how many threads send with it at once."""
    session = requests.Session()
    session.trust_env = False
    session.headers.clear()
    return guard.guard_session(session, guard.parse_networks(allow_networks), pool_maxsize)


def build_headers(key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Webhook-Key": key,
        "User-Agent": USER_AGENT,
    }


def _is_dns_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror | urllib3.exceptions.NameResolutionError):
            return True
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException) and _is_dns_failure(arg):
                return True
        current = current.__cause__ or current.__context__ or getattr(current, "reason", None)
    return False


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def _decode(raw: bytes, encoding: str | None) -> str:
    try:
        return raw.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def _is_timeout(exc: BaseException) -> bool:
    """True for a timeout, including one raised while the body was being read (requests wraps
    urllib3's ReadTimeoutError in a ConnectionError there)."""
    if isinstance(exc, requests.Timeout | TimeoutError):
        return True
    return any(isinstance(arg, urllib3.exceptions.TimeoutError) for arg in getattr(exc, "args", ()))


def _read_limited(response: requests.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


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
) -> DeliveryOutcome:
    """POSTs once, without following redirects, and classifies what happened."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        with session.post(
            url,
            data=body,
            headers=headers,
            timeout=(connect_timeout, timeout),
            allow_redirects=False,
            stream=True,
            verify=verify,
        ) as response:
            raw = _read_limited(response, response_body_limit)
            text = _decode(raw[:STORED_BODY_BYTES], response.encoding)
            return DeliveryOutcome(
                http_status=response.status_code,
                failure=None,
                error=None
                if response.status_code < 300
                else f"HTTP {response.status_code} {response.reason or ''}".strip(),
                response_body=text,
                duration_ms=elapsed(),
                retry_after=response.headers.get("Retry-After"),
            )
    except (TimeoutError, requests.Timeout) as exc:
        kind = "connect timeout" if isinstance(exc, requests.ConnectTimeout) else "read timeout"
        return DeliveryOutcome(None, "timeout", f"{kind} after {elapsed()} ms", None, elapsed())
    except requests.ConnectionError as exc:
        if guard.is_refusal(exc):
            return DeliveryOutcome(None, "destination_refused", _short(exc), None, elapsed())
        if _is_timeout(exc):
            return DeliveryOutcome(None, "timeout", f"read timeout after {elapsed()} ms", None, elapsed())
        failure = "dns_error" if _is_dns_failure(exc) else "connection_error"
        return DeliveryOutcome(None, failure, _short(exc), None, elapsed())
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        return DeliveryOutcome(None, "invalid_request", _short(exc), None, elapsed())
    except requests.RequestException as exc:
        # ChunkedEncodingError, ContentDecodingError...: the connection broke mid-answer.
        return DeliveryOutcome(None, "connection_error", _short(exc), None, elapsed())

"""An endpoint's URL as telemetry may show it: scheme, host and port -- never the credentials,
the query string or the fragment, and its path as ``/REDACTED``: a partner's token often rides
in the path or the query (``/hooks/T000/B000/XXXX``), and the sender never shows either outside
the configuration (``sending.explain`` says the same of errors)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def url_full(url: str) -> str:
    """``url`` without credentials, query or fragment, its path redacted (``url.full`` of the
    HTTP client span)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    path = "/REDACTED" if parts.path not in ("", "/") else "/"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def server_address(url: str) -> tuple[str, int]:
    """(``server.address``, ``server.port``): the host, and the port the scheme implies when the
    URL names none."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port

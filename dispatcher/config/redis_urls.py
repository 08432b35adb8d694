"""Reading a ``redis+sentinel://`` URL: the Sentinels to ask, the primary's name, the database.

``redis+sentinel://[user:password@]host:port[,host:port...]/MASTER_NAME[/DB]``, the form
rq-dashboard reads. The credentials are the primary's (and its replicas'): Sentinels are asked
without a password unless the URL carries ``?sentinel_password=...`` (and
``sentinel_username=...``), as a Sentinel is often left without one. Pure: the queue room
connects with what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_FORM = "redis+sentinel://[user:password@]host:port[,host:port...]/MASTER_NAME[/DB]"
_QUERY_KEYS = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class SentinelAddress:
    """Where a Sentinel-watched primary is found."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def __repr__(self) -> str:  # never the passwords
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"SentinelAddress({hosts}/{self.master}/{self.db})"


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The parts of a Sentinel URL; ``ValueError`` saying what is wrong (never quoting it)."""
    if not is_sentinel_url(url):
        raise ValueError(f"expected {SENTINEL_FORM}")
    rest = url.split("://", 1)[1]
    userinfo, at, hostpart = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
    hosts_text, _, path_and_query = hostpart.partition("/")
    path, _, query = path_and_query.partition("?")
    sentinels = tuple(_host_port(h) for h in hosts_text.split(","))
    names = [p for p in path.split("/")]
    if not names or not names[0]:
        raise ValueError(f"names no primary (MASTER_NAME); expected {SENTINEL_FORM}")
    if len(names) > 2 or (len(names) == 2 and not names[1].isdigit()):
        raise ValueError(f"the part after MASTER_NAME must be a database number; expected {SENTINEL_FORM}")
    username, password = _credentials(userinfo) if at else (None, None)
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - set(_QUERY_KEYS))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r}; expected one of: {', '.join(_QUERY_KEYS)}")
    return SentinelAddress(
        sentinels=sentinels,
        master=unquote(names[0]),
        db=int(names[1]) if len(names) == 2 else 0,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username", [None])[0],
        sentinel_password=options.get("sentinel_password", [None])[0],
    )


def _host_port(text: str) -> tuple[str, int]:
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise ValueError(f"each Sentinel must be host:port; expected {SENTINEL_FORM}")
    return host, port


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    if not colon:
        return None, unquote(user) or None  # redis://secret@host: the password alone
    return unquote(user) or None, unquote(password) or None

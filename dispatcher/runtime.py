"""The per-process context: settings and the connections built from them, made once and shared.

``dispatch()``, the RQ job and the CLI all call :func:`get_runtime`; the first call loads the
configuration (a :class:`ConfigError` then) and later calls reuse the same engine, Redis client
and HTTP session, so connections are kept between jobs. Each connection is made (and its
library imported) on first use, so a command that reads only the database never loads Redis,
RQ or requests.

It sits between ``intake`` and the rooms whose connections it holds (``store``, ``queue``,
``sending``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from . import logs, telemetry
from .config import Endpoint, Settings, load_settings
from .config.partner_settings import proxy_secrets
from .redaction import Masker

if TYPE_CHECKING:
    import redis
    import requests
    from sqlalchemy.engine import Engine

    from .queue import JobQueue
    from .sending.connections import Connections
    from .sending.tokens import TokenCache
    from .store import DisabledCache
    from .store.endpoint_catalog import StoredEndpoint
    from .store.sealing import Keyring


ENDPOINTS_CHECK_SECONDS = 1.0
"""How often a process looks whether the database's endpoints changed (one row read): a change
reaches every worker within about this, plus the batch in hand."""


@dataclass
class EndpointsSeen:
    """What a process last took of the database's endpoints."""

    generation: int | None = None
    checked: float = float("-inf")
    good_until: datetime | None = None
    """When a retiring signing secret's grace ends: the endpoints are taken again then."""
    failing: bool = False
    unusable: frozenset[str] = frozenset()
    """Stored endpoints this host cannot use and had no earlier version of (a certificate file
    missing here): their deliveries wait for a host that can, they are not failed."""

    def due(self) -> bool:
        return time.monotonic() - self.checked >= ENDPOINTS_CHECK_SECONDS


def _changed_endpoints(runtime: Runtime, seen: EndpointsSeen) -> tuple[Endpoint, ...] | None:
    """The database's endpoints when they differ from what ``seen`` says was taken; None when
    nothing changed, before any import, or when the database does not answer."""
    from sqlalchemy.exc import SQLAlchemyError

    from .errors import DispatcherError
    from .store import describe_error, endpoint_catalog

    seen.checked = time.monotonic()
    now = datetime.now(UTC)
    try:
        current = endpoint_catalog.generation(runtime.engine)
        expired = seen.good_until is not None and now >= seen.good_until
        if current is None or (current == seen.generation and not expired):
            seen.failing = False
            return None
        current, stored = endpoint_catalog.catalog(runtime.engine)
    except (SQLAlchemyError, DispatcherError) as exc:
        if not seen.failing:
            logs.log_line(
                logging.WARNING, "endpoints not re-read; those in force stay", error=describe_error(exc)
            )
        seen.failing = True
        return None
    seen.failing = False
    seen.generation = current
    return _built(runtime, stored, seen, now)


def _built(
    runtime: Runtime, stored: list[StoredEndpoint], seen: EndpointsSeen, now: datetime
) -> tuple[Endpoint, ...]:
    """The stored endpoints as settings; one that does not validate here (a certificate file
    missing on this host) keeps the version in force, said in the process log."""
    from .config.endpoint_records import endpoint_from_definition
    from .errors import ConfigError

    built: list[Endpoint] = []
    unusable: set[str] = set()
    ends = [r.until for s in stored for r in s.retiring if r.until > now]
    seen.good_until = min(ends) if ends else None
    for row in stored:
        try:
            built.append(endpoint_from_definition(row.definition, runtime.settings, row.retiring_at(now)))
        except ConfigError as exc:
            logs.log_line(
                logging.ERROR,
                "stored endpoint unusable here; the one in force stays",
                endpoint=row.name,
                error=str(exc),
            )
            previous = runtime.settings.endpoint(row.name)
            if previous is not None:
                built.append(previous)
            else:
                unusable.add(row.name)
    seen.unusable = frozenset(unusable)
    return tuple(built)


@dataclass
class Runtime:
    settings: Settings
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()}.{os.getpid()}")
    redis_socket_timeout: float = 10
    stop_requested: bool = False
    """Set when the worker was asked to stop: a batch ends after the attempt in progress."""
    holding: set[str] = field(default_factory=set)
    """The deliveries this process's running jobs have claimed (see ``reconcile.recover_own_claims``)."""
    take_lost: bool = False
    """A batch's take failed with Redis: its jobs may be marked started by this worker and held
    by nobody (the reply was lost). The worker looks for them before its next job."""
    file_endpoints: tuple[Endpoint, ...] | None = None
    """The configuration file's endpoints (what a first start imports); None: ``settings``'."""
    _holding_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _endpoint_maskers: dict[str, Masker] = field(default_factory=dict, repr=False)
    _catalog: EndpointsSeen = field(default_factory=lambda: EndpointsSeen(), repr=False)

    def __post_init__(self) -> None:
        if self.file_endpoints is None:
            self.file_endpoints = self.settings.endpoints

    def refresh_endpoints(self, *, force: bool = False) -> bool:
        """Takes the database's endpoints when they changed (their generation moved, or a retiring
        secret's grace ended); looks at most every :data:`ENDPOINTS_CHECK_SECONDS` unless
        ``force``. True when the endpoints in force changed. Before the file's endpoints were
        ever imported, the file's are the truth and nothing changes. A database error keeps the
        endpoints in force (said once in the process log). A process's first look opens the
        database: every command, page and dispatch then sees the database's endpoints."""
        seen = self._catalog
        if not force and not seen.due():
            return False
        endpoints = _changed_endpoints(self, seen)
        if endpoints is None:
            return False
        self.settings = replace(self.settings, endpoints=endpoints)
        self.__dict__.pop("queue", None)  # its jobs' timeout follows the endpoints' timeouts
        with self._holding_lock:
            self._endpoint_maskers.clear()
        self.__dict__.pop("masker", None)
        logs.mask_also(self.settings.secrets())
        return True

    @property
    def unusable_endpoints(self) -> frozenset[str]:
        """Stored endpoints this host cannot use (see :class:`EndpointsSeen`)."""
        return self._catalog.unusable

    def adopt_file_endpoints(self) -> bool:
        """The first start: imports the file's endpoints into the database unless they were
        imported before (by any process); then takes the database's. True when this call imported."""
        from .config.endpoint_records import endpoint_definition
        from .store import endpoint_catalog

        endpoints = self.file_endpoints or ()
        definitions = [endpoint_definition(e, self.settings.delivery) for e in endpoints]
        imported = endpoint_catalog.import_first(self.engine, definitions)
        self.refresh_endpoints(force=True)
        return imported

    def hold(self, request_ids: Iterable[str]) -> None:
        with self._holding_lock:
            self.holding.update(request_ids)

    def unhold(self, request_ids: Iterable[str]) -> None:
        with self._holding_lock:
            self.holding.difference_update(request_ids)

    def holding_now(self) -> set[str]:
        with self._holding_lock:
            return set(self.holding)

    @cached_property
    def keyring(self) -> Keyring:
        """The storage keys, which seal the PHI columns and key the patient index."""
        from .store.sealing import Keyring

        return Keyring(self.settings.storage_keys)

    @cached_property
    def engine(self) -> Engine:
        from .store import create_store_engine

        return create_store_engine(self.settings.database_url, self.keyring)

    @cached_property
    def redis(self) -> redis.Redis:
        from .queue import connect

        return connect(self.settings.redis_url, self.redis_socket_timeout)

    @cached_property
    def queue(self) -> JobQueue:
        from .queue import make_queue

        return make_queue(self.settings, self.redis)

    @cached_property
    def disabled(self) -> DisabledCache:
        """Disabled endpoints, cached for a few seconds."""
        from .store import DisabledCache

        return DisabledCache(self.engine)

    @cached_property
    def http(self) -> requests.Session:
        from .sending.attempt import new_session

        return new_session(self.settings.allow_networks, self.settings.worker_threads)

    @cached_property
    def connections(self) -> Connections:
        """The sessions of the endpoints with TLS settings of their own; the rest use :attr:`http`."""
        from .sending.connections import Connections

        return Connections(self.settings.allow_networks, self.settings.worker_threads, self.http)

    @cached_property
    def tokens(self) -> TokenCache:
        """OAuth2 tokens, shared by every process through Redis (sealed with the storage keys)."""
        from .sending.tokens import TokenCache

        keyring = self.keyring
        if keyring.sealing:
            return TokenCache(self.redis, seal=keyring.seal, unseal=keyring.open)
        return TokenCache(self.redis)

    @cached_property
    def senders(self) -> ThreadPoolExecutor:
        """The threads that POST (``worker.threads``); everything else stays on the job's thread."""
        return ThreadPoolExecutor(self.settings.worker_threads, thread_name_prefix="dispatcher-send")

    @cached_property
    def masker(self) -> Masker:
        """Masks every configured secret (for what operators read)."""
        return Masker(self.settings.secrets())

    def masker_for(self, endpoint: Endpoint) -> Masker:
        """Masks one endpoint's secrets: all a partner could echo back in its answers or errors."""
        with self._holding_lock:
            masker = self._endpoint_maskers.get(endpoint.name)
            if masker is None:
                secrets = endpoint.secrets() + proxy_secrets(self.settings.delivery.proxy)
                masker = self._endpoint_maskers[endpoint.name] = Masker(secrets)
            return masker

    @cached_property
    def spool_dir(self) -> str:
        """Where attempt records wait when the database refuses them (beside the process log)."""
        return os.path.join(os.path.dirname(self.settings.process_log) or ".", "spool")

    def start_logging(self) -> None:
        """The process log, and the process's telemetry (:mod:`dispatcher.telemetry`: off at no
        cost unless ``telemetry`` is configured)."""
        logs.setup_process_log(
            self.settings.process_log, self.settings.process_log_retention_days, self.settings.secrets()
        )
        telemetry.configure(self.settings.telemetry)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
        if "senders" in self.__dict__:
            self.senders.shutdown(wait=True)
        if "connections" in self.__dict__:
            self.connections.close()
        if "http" in self.__dict__:
            self.http.close()


_current: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's runtime, built from the configuration on first use."""
    global _current
    with _lock:
        if _current is None:
            runtime = Runtime(load_settings())
            runtime.start_logging()
            _current = runtime
        current = _current
    current.refresh_endpoints()
    return current


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Installs a runtime (a worker at start, a test, the demo); returns the previous one."""
    global _current
    with _lock:
        previous, _current = _current, runtime
    if runtime is not None:
        runtime.start_logging()
    return previous

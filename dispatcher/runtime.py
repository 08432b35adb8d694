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

import os
import socket
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from . import logs
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
    from .store.sealing import Keyring


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
    _holding_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _endpoint_maskers: dict[str, Masker] = field(default_factory=dict, repr=False)

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
        logs.setup_process_log(
            self.settings.process_log, self.settings.process_log_retention_days, self.settings.secrets()
        )

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
        return _current


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Installs a runtime (a worker at start, a test, the demo); returns the previous one."""
    global _current
    with _lock:
        previous, _current = _current, runtime
    if runtime is not None:
        runtime.start_logging()
    return previous

"""The database engine: SQLite or PostgreSQL with the same code, reads that never block
writers, and the words for what went wrong.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import SchemaMismatch, StoreUnavailable
from .sealing import PLAIN, Keyring, attach

SQLITE_BUSY_SECONDS = 30
"""How long a SQLite writer waits for another's lock (``busy_timeout``), and a new connection
for the file to be switched to WAL."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" below then issues BEGIN IMMEDIATE so a
    # writer waits (busy_timeout) for the lock instead of failing on a read-to-write upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    _sqlite_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA secure_delete=ON")  # erased and re-sealed PHI does not linger in free pages
    cursor.close()


def _sqlite_wal(cursor: Any) -> None:
    """Switches the file to WAL, once (the mode is kept in the file). The switch needs the file
    to itself, and SQLite answers "database is locked" at once rather than calling the busy
    handler when another connection holds it: two processes opening a new database together (a
    worker starting while ``dispatcher send`` makes the file) would see one of them fail. So a
    file already in WAL is left as it is, and a locked switch is tried again for as long as a
    writer would wait."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_begin(connection: Any) -> None:
    # A read (see `reading`) takes no write lock, so reports never pause the workers' writes.
    read_only = connection.get_execution_options().get("dispatcher_read_only")
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


IDLE_IN_TRANSACTION_MS = 20_000
"""PostgreSQL ends a session left idle inside a transaction this long. A client cut off by the
network mid-transaction (its COMMIT lost on the way) would otherwise hold its row locks for as
long as the server keeps the connection, and reconcile, recovering that client's claims, would
wait on them. No write of the dispatcher's pauses between statements for more than moments;
reads (:func:`reading`: exports, reports streamed to a slow reader) are exempt."""


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only: on SQLite a deferred transaction, not BEGIN IMMEDIATE; on
    PostgreSQL one that may wait on its reader as long as it likes (it holds no row lock)."""
    with engine.connect() as conn:
        conn.execution_options(dispatcher_read_only=True)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 0")
        yield conn


def create_store_engine(database_url: str, keyring: Keyring = PLAIN, check_schema: bool = True) -> Engine:
    """An engine for the URL that seals and opens the PHI columns with ``keyring``.

    An empty database is made at the newest revision on first use; any other must be at it
    (``check_schema=False``, for ``dispatcher db``, skips both).

    Raises:
        StoreUnavailable: the database cannot be reached.
        SchemaOutdated: the database is behind this version (``run: dispatcher db upgrade``).
        SchemaUnknown: a newer version upgraded it.
    """
    if database_url.startswith("sqlite"):
        path = sa.engine.make_url(database_url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(database_url, connect_args={"timeout": 30, "check_same_thread": False})
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        sa_event.listen(engine, "begin", _sqlite_begin)
    else:
        # No pre-ping: it costs a round trip per checkout. A connection the server dropped is
        # invalidated on first use and the write retried (insert_deliveries; tenacity in jobs).
        url = sa.engine.make_url(database_url)
        connect_args = {}
        if "options" not in url.query:
            connect_args["options"] = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
        engine = sa.create_engine(url, pool_size=5, max_overflow=5, connect_args=connect_args)
    attach(engine, keyring)
    if not check_schema:
        return engine
    from .versioning import require_current

    try:
        require_current(engine)
    except SchemaMismatch:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreUnavailable(
            f"database {safe_url(database_url)} is unavailable: {_first_line(exc)}"
        ) from exc
    return engine


def safe_url(url: str) -> str:
    """The URL with any password hidden (:func:`dispatcher.redaction.mask_url`: an unparsable
    URL is shown as its scheme only)."""
    from ..redaction import mask_url

    return mask_url(url)


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]


def describe_error(exc: BaseException) -> str:
    return _first_line(exc)


def is_transient(exc: BaseException) -> bool:
    """True for a database error that may pass if the write is tried again (the server away, a
    dropped connection, a lock or pool timeout); False for one that will fail the same way
    again (bad data, a constraint, a programming error)."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def storable_text(value: str | None) -> str | None:
    """Text every backend stores: PostgreSQL refuses NUL characters, so a partner's answer that
    holds one has it replaced by U+FFFD."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value
